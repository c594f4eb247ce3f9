"""Opening the SQLite database: pragmas, numbered migrations, the writer thread."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from peewee import SqliteDatabase
from playhouse.migrations import Migration, Runner

from pushgod.model.changes import Change
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store import feed
from pushgod.store.tables import Tables
from pushgod.store.writer import Writer, WriteTx

log = logging.getLogger(__name__)

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
DATABASE_FILE = "pushgod.db"
MIGRATION_LOCK = "pushgod.db.migrating"
MIGRATION_TABLE = "schema_migration"  # where playhouse's Runner records applied migrations


def connect(path: Path, synchronous: str) -> SqliteDatabase:
    """A peewee database with the pragmas every connection gets (WAL, foreign keys, timeout).

    Transactions start with `BEGIN IMMEDIATE` so the writer takes the write lock up
    front instead of failing half-way when another process (the CLI) writes too.
    """
    return SqliteDatabase(
        str(path),
        pragmas={
            "journal_mode": "wal",
            "synchronous": synchronous,
            "foreign_keys": 1,
            "busy_timeout": 10_000,
            "cache_size": -8_000,
        },
        lock_type="IMMEDIATE",
    )


def migrate(db: SqliteDatabase) -> list[str]:
    """Apply pending numbered migrations; returns the names applied."""
    known_migrations()  # the runner would take an unreadable directory for an empty one
    applied: list[str] = Runner(db, directory=str(MIGRATIONS), table_name=MIGRATION_TABLE).up()
    return applied


def known_migrations() -> list[str]:
    """The migrations this code has, in order, as the runner itself finds them.

    The runner globs the directory, and a glob sees nothing where it may not look: a
    checkout in a 0700 directory, read after `sudo pushgod` became the data's owner.
    Finding none is that, never a pushgod without a schema.
    """
    names = [migration.name for migration in Migration.load_directory(str(MIGRATIONS))]
    if not names:
        raise PushgodError(
            ErrorCode.PERMISSION_DENIED,
            f"cannot read pushgod's own files in {MIGRATIONS} as uid {os.geteuid()}: install "
            "pushgod where the user who owns the data directory can read it (the .deb does)",
        )
    return names


def instance_id(connection: sqlite3.Connection) -> str | None:
    """Which database this is: a hash of when its first migration ran; None before that.

    The same for every process that opens the file (or a restored copy of it), different
    for another install. /healthz shows it so `pushgod doctor` can tell whether the public
    URL reaches this pushgod. It is not a secret: a hash of a timestamp.
    """
    try:
        row = connection.execute(
            f"SELECT name, applied FROM {MIGRATION_TABLE} ORDER BY id LIMIT 1"  # noqa: S608
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: never migrated
        return None
    if row is None:
        return None
    return hashlib.sha256(f"pushgod instance {row[0]} {row[1]}".encode()).hexdigest()[:16]


class Store:
    """The database of one data directory: reads on the caller's thread, writes on the writer."""

    def __init__(self, data_dir: Path, *, synchronous: str = "full") -> None:
        self.path = data_dir / DATABASE_FILE
        self.db = connect(self.path, synchronous)
        self.tables = Tables(self.db)
        self.instance: str | None = None  # instance_id, known once open
        self._writer: Writer | None = None

    def open(
        self,
        on_commit: Callable[[list[Change]], None],
        on_external: Callable[[], None] = lambda: None,
    ) -> None:
        """Create the directory, migrate, and start the writer on the running loop.

        `on_commit` gets every committed change, this process's and others';
        `on_external` is called after another process committed anything.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        # The daemon and the CLI may start together on a new database; the migration
        # runner decides what to apply before it locks anything, so take turns.
        with open(self.path.with_name(MIGRATION_LOCK), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            applied = migrate(self.db)
        if applied:
            log.info("applied migrations %s to %s", ", ".join(applied), self.path)
        self.instance = instance_id(self.tables.db.connection())
        self._writer = Writer(
            self.db,
            self.tables,
            asyncio.get_running_loop(),
            on_commit,
            on_external,
            lambda after, before: feed.committed_after(self.tables, after, before),
        )
        self._writer.start()

    async def write(self, fn: Callable[[WriteTx], T]) -> T:
        """Run `fn` in the next group commit and return its result after the commit."""
        if self._writer is None:
            raise RuntimeError("the store is not open")
        return await self._writer.submit(fn)

    def ping(self) -> None:
        """Raise unless the database answers a query."""
        self.tables.execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Finish queued writes, then close this thread's read connection."""
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        self.db.close()
