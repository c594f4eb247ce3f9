"""Online backup of the live database to a file, safe while the daemon writes.

SQLite's backup API copies the source in steps; in
Python's `Connection.backup`, when another connection writes to the source between two
steps, the next step starts the copy over, because each step opens (and closes) its own
read transaction and finds the database changed. A daemon committing every few
milliseconds would so starve a backup forever: measured on a 100k-row database with one
commit every 2 ms, 10 s of steps of 16 pages got nowhere (3,000 restarts). So `backup`
opens a read transaction on the source itself before the first step and holds it to the
last: every step then reads that one snapshot (a step only opens a transaction of its
own when none is open), nothing restarts, and the backup holds exactly the writes
committed before it began. In WAL mode a reader never blocks the writer; the only cost
is that checkpoints cannot pass the snapshot until the backup ends, so the WAL grows by
what is written meanwhile and is folded back afterwards. `VACUUM INTO` would give the
same snapshot in one statement, but it rebuilds every table and index (more CPU on a
Pi), and cannot report progress; the backup API can, in steps of `STEP_PAGES`.

The backup is written to a temporary file beside the destination, checked with
`PRAGMA integrity_check`, switched to a rollback journal (one self-contained file),
fsynced and renamed over the destination, so the destination is never half a backup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store.sqlite_files import (
    COMPANIONS,
    Summary,
    check_integrity,
    contents,
    fsync,
    os_error,
    sqlite_call,
    uri_path,
)

STEP_PAGES = 256
"""Pages copied per backup step (1 MiB at SQLite's 4 KiB pages): the progress grain."""

Progress = Callable[[int, int], None]
"""Called after each backup step with (pages copied, pages in all)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    summary: Summary
    pages: int
    seconds: float


def backup(
    database: Path,
    destination: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    source_access: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    step_pages: int = STEP_PAGES,
) -> BackupResult:
    """Copy the live `database` to `destination`, consistent as of the call.

    `source_access()` wraps every touch of the live database (the CLI becomes the data
    directory's owner there when run as root); the destination is written as the caller.
    """
    started = time.monotonic()
    destination = Path(os.path.abspath(destination))
    _check_destination(database, destination, force)
    with source_access():
        if not database.is_file():
            raise PushgodError(
                ErrorCode.DATABASE_NOT_FOUND,
                f"there is no database at {database}: nothing to back up "
                "(is storage.data_dir right?)",
            )
        uri = f"file:{uri_path(database)}?mode=rw"  # never creates one
        source = sqlite_call(lambda: sqlite3.connect(uri, uri=True, isolation_level=None), database)
        try:
            # The snapshot every step reads (see the module docstring), and the counts
            # of what it holds.
            sqlite_call(lambda: source.execute("BEGIN"), database)
            channels, messages, schema = sqlite_call(lambda: contents(source), database)
        except BaseException:
            source.close()
            raise
    try:
        pages = _write_backup(source, database, destination, progress, step_pages)
    finally:
        with source_access():
            source.close()
    summary = Summary(destination.stat().st_size, channels, messages, schema, ())
    return BackupResult(destination, summary, pages, time.monotonic() - started)


def _check_destination(database: Path, destination: Path, force: bool) -> None:
    if destination.is_dir():
        raise PushgodError(
            ErrorCode.INVALID_FIELD,
            f"{destination} is a directory; name the backup file, "
            f"e.g. {destination / 'pushgod-backup.db'}",
        )
    if not destination.parent.is_dir():
        raise PushgodError(ErrorCode.INVALID_FIELD, f"{destination.parent}: no such directory")
    live = {database.resolve(), *(Path(f"{database.resolve()}{s}") for s in (*COMPANIONS, "-shm"))}
    if destination.resolve() in live:
        raise PushgodError(
            ErrorCode.INVALID_FIELD,
            f"{destination} is the live database; write the backup somewhere else",
        )
    if os.path.lexists(destination) and not force:
        raise PushgodError(
            ErrorCode.BACKUP_EXISTS, f"{destination} exists; pass --force to replace it"
        )


def _write_backup(
    source: sqlite3.Connection,
    database: Path,
    destination: Path,
    progress: Progress | None,
    step_pages: int,
) -> int:
    """Copy into a temporary file beside `destination`, check it, rename it into place.

    The file sits in a new 0700 directory, not beside `destination` itself: SQLite opens
    `<file>-wal` and `-journal` by name, and in a shared directory such as /tmp another
    user could plant a -wal there that root's copy would then read as its own contents.
    """
    copied = 0

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total - remaining
        if progress is not None:
            progress(copied, total)

    private: Path | None = None
    try:
        private = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
        temporary = private / "backup.db"
        target = sqlite_call(lambda: sqlite3.connect(temporary, isolation_level=None), destination)
        try:
            sqlite_call(lambda: source.backup(target, pages=step_pages, progress=step), destination)
            # The copy carries the source's WAL flag; a backup is one file, so no WAL.
            sqlite_call(lambda: target.execute("PRAGMA journal_mode=DELETE"), destination)
            check_integrity(
                target, f"the copy of {database}", "; the database itself is probably damaged"
            )
        finally:
            target.close()
        fsync(temporary)
        os.replace(temporary, destination)
        fsync(destination.parent)
    except BaseException as error:
        if isinstance(error, OSError):
            raise os_error(error, destination) from error
        raise
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    return copied
