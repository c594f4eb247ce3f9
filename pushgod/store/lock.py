"""The data-directory lock: one daemon (or one restore) per data directory at a time.

`<data_dir>/pushgod.lock` carries an exclusive `flock` for as long as its holder runs,
and the holder's pid and role, so the one refused can say who is in the way. The
kernel drops the lock when the holder's process ends, however it ends (SIGKILL, a
power cut), so a stale file never blocks anybody; the file itself is never deleted, as
unlinking a lock file that others may have open is a race.

The CLI's other commands (channel, token, ...) do not take it: they must work while the
daemon runs, and SQLite's own locking keeps them and the daemon consistent.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from pushgod.model.errors import ErrorCode, PushgodError

LOCK_FILE = "pushgod.lock"


class DataDirLock:
    """An exclusive, non-blocking lock on a data directory, held by a `role`.

    Use it as a context manager, or call `acquire()` and `release()`. `acquire()`
    creates the directory (0750) when it is missing, like opening the store does.
    """

    def __init__(self, data_dir: Path, role: str) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self.role = role
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `PushgodError(data_dir_in_use)` naming the holder."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this process")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd, writable = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise PushgodError(ErrorCode.DATA_DIR_IN_USE, self._refusal(holder)) from None
        except BaseException:
            os.close(fd)
            raise
        if writable:  # a lock file of another user can still be locked, not written
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.role}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (and the pid in the file); nothing when it is not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):  # the next reader of a free lock sees no stale pid
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _refusal(self, holder: tuple[int, str] | None) -> str:
        who = "pid unknown" if holder is None else f"pid {holder[0]}"
        role = "daemon" if holder is None else holder[1]
        if role == "daemon":
            message = f"another pushgod daemon uses {self.data_dir} ({who})"
        else:
            message = f"a pushgod {role} is running on {self.data_dir} ({who})"
        if self.role != "daemon":
            message += "; stop the daemon first (systemctl stop pushgod) and try again"
        return message


def _open(path: Path) -> tuple[int, bool]:
    """The lock file opened for writing, else (owned by someone else) for reading."""
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        return os.open(path, flags | os.O_RDWR | os.O_CREAT, 0o640), True
    except PermissionError as cannot_write:
        try:
            return os.open(path, flags | os.O_RDONLY), False
        except OSError:
            raise cannot_write from None


def _holder(fd: int) -> tuple[int, str] | None:
    """(pid, role) written by the holder, None while it has not written them yet."""
    try:
        words = os.pread(fd, 100, 0).decode("ascii", "replace").split()
    except OSError:
        return None
    if not words or not words[0].isdigit():
        return None
    return int(words[0]), words[1] if len(words) > 1 else "daemon"
