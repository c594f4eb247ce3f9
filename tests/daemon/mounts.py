"""Real small file systems for the disk-full and read-only cases: tmpfs mounts (root only)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Mount:
    path: Path

    def remount(self, *, read_only: bool) -> None:
        option = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{option}", str(self.path)], check=True)


@contextmanager
def mount_tmpfs(path: Path, *, size: str) -> Iterator[Mount]:
    """A tmpfs of `size` at `path` (created) for the block; unmounted after it.

    Skips the test when not root (mounting needs it); as root, a failed mount fails the
    test. A full disk cannot be had otherwise without filling a real one.
    """
    if os.geteuid() != 0:
        pytest.skip("a real full or read-only file system needs a tmpfs mount, which needs root")
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # as root it should: a failed run says so, not a silent skip
        pytest.fail(
            f"cannot mount a tmpfs as root here (a container without CAP_SYS_ADMIN?): "
            f"{done.stderr}; the full-disk and read-only tests, like the nspawn test, need it"
        )
    try:
        yield Mount(path)
    finally:
        subprocess.run(["umount", str(path)], check=True)
