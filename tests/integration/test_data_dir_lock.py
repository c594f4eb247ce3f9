"""The data-directory lock (pushgod/store/lock.py): one daemon or restore at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store.lock import LOCK_FILE, DataDirLock

HOLD = """
import sys
from pathlib import Path
from pushgod.store.lock import DataDirLock
DataDirLock(Path(sys.argv[1]), "daemon").acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with DataDirLock(data_dir, "daemon"):
        assert (data_dir / LOCK_FILE).read_text() == f"{os.getpid()} daemon\n"
        with pytest.raises(PushgodError) as refused:
            DataDirLock(data_dir, "daemon").acquire()  # flock: per open file, so even here
        assert refused.value.code == ErrorCode.DATA_DIR_IN_USE
        assert refused.value.message == (
            f"another pushgod daemon uses {data_dir} (pid {os.getpid()})"
        )
        with pytest.raises(PushgodError) as refused:
            DataDirLock(data_dir, "restore").acquire()
        assert refused.value.message.endswith(
            "; stop the daemon first (systemctl stop pushgod) and try again"
        )
    assert (data_dir / LOCK_FILE).read_text() == ""  # no stale pid once free
    with DataDirLock(data_dir, "restore"):
        with pytest.raises(PushgodError) as refused:
            DataDirLock(data_dir, "daemon").acquire()
        assert refused.value.message == (
            f"a pushgod restore is running on {data_dir} (pid {os.getpid()})"
        )


def test_the_lock_creates_the_data_dir_like_the_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    with DataDirLock(data_dir, "daemon"):
        assert data_dir.stat().st_mode & 0o777 == 0o750
        assert (data_dir / LOCK_FILE).stat().st_mode & 0o777 == 0o640


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    """The kernel drops a flock with its process, however it ends: no stale lock files."""
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(PushgodError) as refused:
            DataDirLock(data_dir, "restore").acquire()
        assert f"(pid {holder.pid})" in refused.value.message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    with DataDirLock(data_dir, "restore"):
        assert (data_dir / LOCK_FILE).read_text() == f"{os.getpid()} restore\n"
