"""Database files on disk: SQLite's errors as pushgod's, integrity, fsync, what a file holds.

Shared by the online backup (backup.py) and restore (restore.py).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store.database import MIGRATION_TABLE

SQLITE_HEADER = b"SQLite format 3\x00"
COMPANIONS = ("-wal", "-journal")
"""Files SQLite keeps beside a database that hold committed or rollback data."""
INTEGRITY_ERRORS_SHOWN = 3

T = TypeVar("T")


@dataclass(frozen=True)
class Summary:
    """What a database file holds, as far as a person restoring it cares."""

    bytes: int
    channels: int
    messages: int
    schema: str | None  # the last migration applied
    pending: tuple[str, ...]  # migrations this pushgod applies when it next opens it


def contents(connection: sqlite3.Connection) -> tuple[int, int, str | None]:
    """(channels, messages, last migration) of a pushgod database."""
    channels = connection.execute("SELECT COUNT(*) FROM channels").fetchone()[0]
    messages = connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    query = f"SELECT MAX(name) FROM {MIGRATION_TABLE}"  # noqa: S608 - our constant
    row = connection.execute(query).fetchone()
    return channels, messages, row[0]


def new_temporary(directory: Path, prefix: str, suffix: str) -> Path:
    """A new empty file in `directory` (same file system as the final name: rename is atomic)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.close(fd)
    return Path(name)


def check_integrity(connection: sqlite3.Connection, what: str, hint: str = "") -> None:
    """Raise `database_corrupt` with the first problems unless `PRAGMA integrity_check` is ok."""
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as error:  # damaged beyond what the check can list
        if not error.sqlite_errorname.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise
        rows = [(str(error),)]
    if rows != [("ok",)]:
        problems = "; ".join(str(row[0]) for row in rows[:INTEGRITY_ERRORS_SHOWN])
        hidden = len(rows) - INTEGRITY_ERRORS_SHOWN
        more = f" (and {hidden} more)" if hidden > 0 else ""
        raise PushgodError(
            ErrorCode.DATABASE_CORRUPT,
            f"{what} fails SQLite's integrity check: {problems}{more}{hint}",
        )


def sqlite_call(action: Callable[[], T], path: Path) -> T:
    """`action()`, with an SQLite error turned into pushgod's (`sqlite_error`)."""
    try:
        return action()
    except sqlite3.Error as error:
        raise sqlite_error(error, path) from error


def sqlite_error(error: sqlite3.Error, path: Path) -> PushgodError:
    """The error code a person can act on for what SQLite said about `path`."""
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith("SQLITE_NOTADB"):
        return PushgodError(ErrorCode.NOT_A_DATABASE, f"{path} is not an SQLite database")
    if name.startswith("SQLITE_CORRUPT"):
        return PushgodError(ErrorCode.DATABASE_CORRUPT, f"{path} is damaged: {error}")
    if name.startswith("SQLITE_FULL"):
        return PushgodError(ErrorCode.DISK_FULL, f"no space left on the device of {path}")
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_AUTH")):
        return PushgodError(ErrorCode.PERMISSION_DENIED, f"cannot open or write {path}: {error}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return PushgodError(ErrorCode.DATABASE_BUSY, f"{path} is locked: {error}")
    if isinstance(error, sqlite3.OperationalError) and "no such table" in str(error):
        return PushgodError(
            ErrorCode.NOT_A_PUSHGOD_DATABASE, f"{path} is not a pushgod database ({error})"
        )
    return PushgodError(ErrorCode.INTERNAL_ERROR, f"{path}: {error}")


def os_error(error: OSError, path: Path) -> OSError | PushgodError:
    """A full disk or a refused write as pushgod's error; anything else as it was."""
    where = error.filename or path
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return PushgodError(ErrorCode.DISK_FULL, f"no space left to write {where}")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PushgodError(ErrorCode.PERMISSION_DENIED, f"permission denied: {where}")
    return error


def fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') writes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_database(path: Path) -> None:
    """A temporary database and whatever SQLite kept beside it."""
    for suffix in ("", *COMPANIONS, "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def uri_path(path: Path) -> str:
    """A path for an SQLite URI: `?` and `#` (and `%`) would end or escape it."""
    return str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
