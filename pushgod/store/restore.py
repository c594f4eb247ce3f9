"""Restoring a backup into a stopped data directory.

`open_backup` checks the backup where it is (integrity, pushgod's tables, no migration
this code does not know) before the data directory is touched. `restore` then takes the
data-directory lock (no daemon can run meanwhile), copies the backup into the data
directory, checks that copy again, keeps the current database under a new name beside
it, and renames the copy into place. Any error before that rename changes nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store.database import DATABASE_FILE, MIGRATION_TABLE, known_migrations
from pushgod.store.lock import DataDirLock
from pushgod.store.sqlite_files import (
    COMPANIONS,
    SQLITE_HEADER,
    Summary,
    check_integrity,
    contents,
    fsync,
    new_temporary,
    os_error,
    remove_database,
    sqlite_call,
    sqlite_error,
    uri_path,
)

PUSHGOD_TABLES = frozenset({MIGRATION_TABLE, "channels", "changes", "messages"})
SHM_DMS_BYTE = 128
"""The -shm lock byte every open connection holds (os_unix.c: UNIX_SHM_DMS = 120 + 8)."""


@dataclass(frozen=True)
class RestoreResult:
    database: Path
    source: str
    kept: Path | None  # the database it replaced, under its new name
    summary: Summary


class BackupFile:
    """A backup to restore: open, and checked (`open_backup`) before anything is touched.

    The file stays open, so the CLI can open it as root (a backup in /root) and restore
    it after becoming the service user.
    """

    def __init__(self, path: Path, file: BinaryIO, summary: Summary) -> None:
        self.path = path
        self.file = file
        self.summary = summary

    def __enter__(self) -> BackupFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()


def open_backup(path: Path) -> BackupFile:
    """Open `path` and check that it is an intact pushgod database this code can open.

    Every refusal of a bad file happens here, before the data directory is touched.
    """
    try:
        # O_NONBLOCK: a FIFO (or a device) named by mistake must not hang the command.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PushgodError(ErrorCode.BACKUP_NOT_FOUND, f"{path}: no such file") from None
    except PermissionError:
        raise PushgodError(
            ErrorCode.PERMISSION_DENIED, f"permission denied: cannot read {path}"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PushgodError(ErrorCode.NOT_A_DATABASE, f"{path} is not a regular file")
    file = os.fdopen(fd, "rb")
    try:
        header = os.pread(file.fileno(), len(SQLITE_HEADER), 0)
        if header != SQLITE_HEADER:
            raise PushgodError(ErrorCode.NOT_A_DATABASE, f"{path} is not an SQLite database")
        wal = Path(f"{path}-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            raise PushgodError(
                ErrorCode.DATABASE_BUSY,
                f"{wal} beside {path} holds changes that are not in {path} (a live "
                "database, or one copied while in use): stop what uses it and try again. "
                "Backups made with `pushgod backup` are one file",
            )
        summary = inspect(path, str(path))
    except OSError as error:
        file.close()
        raise os_error(error, path) from error
    except BaseException:
        file.close()
        raise
    return BackupFile(path, file, summary)


def restore(data_dir: Path, backup: BackupFile, *, now: datetime | None = None) -> RestoreResult:
    """Replace the data directory's database with `backup`.

    Takes the data-directory lock, so it refuses while a daemon runs. The copy made in
    the data directory is checked again before it replaces anything: it is what the
    daemon will open.
    """
    database = data_dir / DATABASE_FILE
    aside = _Aside(database, now or datetime.now(UTC))
    try:
        with DataDirLock(data_dir, "restore"):
            temporary = new_temporary(data_dir, f".{DATABASE_FILE}.restore-", ".partial")
            try:
                _copy(backup.file, temporary)
                summary = inspect(temporary, f"the copy of {backup.path} in {data_dir}")
                aside.keep()
                os.chmod(temporary, aside.mode)
                os.replace(temporary, database)
            except BaseException:
                remove_database(temporary)
                aside.undo()
                raise
            fsync(data_dir)
    except OSError as error:
        raise os_error(error, data_dir) from error
    return RestoreResult(database, str(backup.path), aside.kept, summary)


def _copy(source: BinaryIO, temporary: Path) -> None:
    source.seek(0)
    with open(temporary, "wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
        target.flush()
        os.fsync(target.fileno())


def inspect(path: Path, name: str) -> Summary:
    """Check that `path` is an intact pushgod database this code can open; say what it holds.

    Opened read-only and immutable: SQLite creates no -wal or -shm beside it.
    """
    uri = f"file:{uri_path(path)}?mode=ro&immutable=1"
    connection = sqlite_call(lambda: sqlite3.connect(uri, uri=True), Path(name))
    try:
        check_integrity(connection, name)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        missing = PUSHGOD_TABLES - tables
        if missing:
            raise PushgodError(
                ErrorCode.NOT_A_PUSHGOD_DATABASE,
                f"{name} is an SQLite database but not pushgod's "
                f"(it has no {', '.join(sorted(missing))} table)",
            )
        query = f"SELECT name FROM {MIGRATION_TABLE}"  # noqa: S608 - our constant
        applied = {row[0] for row in connection.execute(query)}
        known = known_migrations()
        unknown = sorted(applied - set(known))
        if unknown:
            raise PushgodError(
                ErrorCode.SCHEMA_TOO_NEW,
                f"{name} comes from a newer pushgod (migrations {', '.join(unknown)} are "
                "unknown here); upgrade pushgod, then restore it",
            )
        channels, messages, schema = contents(connection)
    except sqlite3.Error as error:
        raise sqlite_error(error, Path(name)) from error
    finally:
        connection.close()
    pending = tuple(migration for migration in known if migration not in applied)
    return Summary(path.stat().st_size, channels, messages, schema, pending)


class _Aside:
    """Keeps the current database as `<db>.before-restore-<time>` and clears its WAL.

    Refused while another process has the database open (`_in_use`). The database is
    folded into one file first (its WAL checkpointed, journal mode DELETE, which also
    removes -wal and -shm). A database SQLite cannot read is kept as it is,
    with its -wal and -journal renamed alongside so the pair stays usable. Either way
    no -wal, -shm or -journal of the old database is left where the new one goes:
    SQLite would replay them into it.

    The database gets a second name (a link, not a move), so until the caller's rename
    there is always a whole database at the old name; `undo()` takes the new names
    back when the restore fails before that rename.
    """

    def __init__(self, database: Path, now: datetime) -> None:
        self.database = database
        self.name = _free_name(database, f".before-restore-{now:%Y%m%dT%H%M%SZ}")
        self.kept: Path | None = None
        self.mode = 0o640
        self._moved: list[tuple[Path, Path]] = []

    def keep(self) -> None:
        if _in_use(self.database):
            raise PushgodError(
                ErrorCode.DATABASE_BUSY,
                f"another process has {self.database} open (a pushgod command?); "
                "let it finish and try again",
            )
        if self.database.exists():
            self.mode = self.database.stat().st_mode & 0o777
            _fold(self.database)
            _link(self.database, self.name)
            self.kept = self.name
        for suffix in COMPANIONS:
            companion = Path(f"{self.database}{suffix}")
            if companion.exists():
                _link(companion, Path(f"{self.name}{suffix}"))
                self._moved.append((companion, Path(f"{self.name}{suffix}")))
                companion.unlink()
                self.kept = self.kept or Path(f"{self.name}{suffix}")
        Path(f"{self.database}-shm").unlink(missing_ok=True)

    def undo(self) -> None:
        for companion, kept in self._moved:
            if not companion.exists():
                os.link(kept, companion)
            kept.unlink()
        if self.kept == self.name and self.database.exists():
            self.name.unlink()
        self.kept, self._moved = None, []


def _in_use(database: Path) -> bool:
    """Whether another process has the (WAL mode) database open.

    Every connection to a WAL database holds a read lock on the "DMS" byte of its -shm
    file while it is open, and SQLite takes a write lock there to learn whether it is the
    first (os_unix.c, unixLockSharedMemory); so do we, and let go at once. Leaving WAL
    mode does not tell: SQLite lets a connection do that under other processes' idle
    connections and deletes their -wal and -shm.
    """
    try:
        fd = os.open(f"{database}-shm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # no connection is open without it
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_BYTE)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def _fold(database: Path) -> None:
    """Checkpoint the WAL into the file and leave WAL mode, unless SQLite cannot read it."""
    try:
        connection = sqlite3.connect(database, isolation_level=None, timeout=2)
    except sqlite3.Error:
        return
    try:
        mode = connection.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as error:
        if error.sqlite_errorname not in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            return  # unreadable: kept as it is, companions and all
        mode = None
    except sqlite3.DatabaseError:
        return
    finally:
        connection.close()
    if mode != "delete":
        raise PushgodError(
            ErrorCode.DATABASE_BUSY,
            f"another process has {database} open (a pushgod command?); "
            "let it finish and try again",
        )


def _free_name(database: Path, suffix: str) -> Path:
    candidate = Path(f"{database}{suffix}")
    number = 1
    while any(os.path.lexists(f"{candidate}{s}") for s in ("", *COMPANIONS)):
        number += 1
        candidate = Path(f"{database}{suffix}-{number}")
    return candidate


def _link(source: Path, target: Path) -> None:
    """A second name for `source` (a copy where the file system has no hard links)."""
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        shutil.copy2(source, target)
        fsync(target)
