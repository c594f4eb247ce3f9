"""The single writer thread: queued writes committed together (group commit).

Every write of pushgod is a callable run on this thread inside one `BEGIN IMMEDIATE`
transaction shared with whatever else was queued at the same moment. Each callable runs
in its own savepoint, so one failing write rolls back alone. After the COMMIT returned,
the batch's changes are handed to `on_commit` on the event loop, in sequence order, and
only then are the callers' futures resolved.

Other processes (the CLI) write to the same database. The writer notices their commits
(SQLite's `data_version`, checked at most once a `EXTERNAL_CHECK_S`, and a gap before its
own sequence numbers) and hands their changes to `on_commit` too, in order, then calls
`on_external`: so a message sent or a token revoked with the CLI reaches a running
daemon's streams.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from peewee import SqliteDatabase

from pushgod.model.changes import Change, ChangeKind
from pushgod.model.errors import PushgodError
from pushgod.model.fields import compact_json
from pushgod.store.tables import Tables

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 512
EXTERNAL_CHECK_S = 1.0

ReadAfter = Callable[[int, int | None], list[Change]]
"""The committed changes after one sequence number and before another (None: no end)."""


class WriteTx:
    """What a write callable gets: the tables and a way to append to the change feed."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.changes: list[Change] = []

    def emit(
        self,
        channel_id: str,
        kind: ChangeKind,
        entity_id: str,
        action: str,
        at: int,
        data: dict[str, Any],
        *,
        store_data: bool = True,
        encoded: str | None = None,
    ) -> Change:
        """Append a change row and return it with its sequence number.

        `store_data=False` keeps the payload out of the row when the entity's own row
        already holds it (messages), so a message is not stored twice. `encoded` is
        `data` as JSON, when the caller has it already.
        """
        text = (compact_json(data) if encoded is None else encoded) if store_data else None
        seq = self.tables.execute(
            "INSERT INTO changes (channel_id, kind, entity_id, action, at, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (channel_id, kind.value, entity_id, action, at, text),
        ).lastrowid
        assert seq is not None  # an INSERT always has one
        change = Change(seq, channel_id, kind, entity_id, action, at, data)
        self.changes.append(change)
        return change

    def isolated(self, write: Callable[[], T]) -> T:
        """Run `write` in a savepoint of its own: if it raises, what it wrote and emitted
        is undone and the rest of the transaction stands."""
        emitted = len(self.changes)
        self.tables.execute("SAVEPOINT isolated")
        try:
            return write()
        except BaseException:
            self.tables.execute("ROLLBACK TO isolated")
            del self.changes[emitted:]  # never published: they were rolled back
            raise
        finally:
            self.tables.execute("RELEASE isolated")


@dataclass(slots=True)
class _Job(Generic[T]):
    fn: Callable[[WriteTx], T]
    future: asyncio.Future[T]
    result: Any = None
    error: BaseException | None = None
    changes: list[Change] = field(default_factory=list)


_SHUTDOWN = object()


class Writer:
    def __init__(
        self,
        db: SqliteDatabase,
        tables: Tables,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[list[Change]], None],
        on_external: Callable[[], None],
        read_after: ReadAfter,
    ) -> None:
        self._db: Any = db
        self._tables = tables
        self._loop = loop
        self._on_commit = on_commit
        self._on_external = on_external
        self._read_after = read_after
        self._last_seq = 0
        self._data_version = 0
        self._checked_at = 0.0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pushgod.store.writer", daemon=True)
        self.batches = 0
        self.writes = 0

    def start(self) -> None:
        self._thread.start()

    async def submit(self, fn: Callable[[WriteTx], T]) -> T:
        """Run `fn` on the writer thread; return its result once it is committed."""
        if not self._thread.is_alive():
            raise RuntimeError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Job(fn, future))
        return await future

    def stop(self) -> None:
        """Commit everything queued so far, then close the write connection."""
        if self._thread.is_alive():
            self._queue.put(_SHUTDOWN)
            self._thread.join()

    def _run(self) -> None:
        try:
            self._last_seq = self._tables.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM changes"
            ).fetchone()[0]
            self._data_version = self._version()
            while True:
                try:
                    item = self._queue.get(timeout=EXTERNAL_CHECK_S)
                except queue.Empty:
                    self._catch_up()
                    continue
                if item is _SHUTDOWN:
                    return
                batch = [item]
                stopping = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _SHUTDOWN:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(batch)
                if stopping:
                    return
                if time.monotonic() - self._checked_at >= EXTERNAL_CHECK_S:
                    self._catch_up()
        finally:
            self._db.close()

    def _version(self) -> int:
        """Changes whenever another connection commits, never for this one's commits."""
        self._checked_at = time.monotonic()
        version: int = self._tables.execute("PRAGMA data_version").fetchone()[0]
        return version

    def _catch_up(self) -> None:
        """Publish what other processes committed since the last look, if anything."""
        version = self._version()
        if version == self._data_version:
            return
        self._data_version = version
        external = self._read_after(self._last_seq, None)
        if external:
            self._last_seq = external[-1].seq
        self._loop.call_soon_threadsafe(self._finish, [], external, True)

    def _commit(self, batch: list[_Job[Any]]) -> None:
        try:
            with self._db.atomic():
                for job in batch:
                    tx = WriteTx(self._tables)
                    try:  # a job that fails rolls back alone
                        job.result = tx.isolated(partial(job.fn, tx))
                        job.changes = tx.changes
                    except Exception as error:
                        if not isinstance(error, PushgodError):
                            log.exception("a write failed")
                        job.error = error
        except Exception as error:
            log.exception("commit of %d writes failed", len(batch))
            for job in batch:
                job.error, job.changes = error, []
        self.batches += 1
        self.writes += len(batch)
        first = next((job.changes[0].seq for job in batch if job.changes and not job.error), None)
        external: list[Change] = []
        if first is not None:
            if first > self._last_seq + 1:  # another process committed in between
                external = self._read_after(self._last_seq, first)
            self._last_seq = max(
                change.seq for job in batch if job.error is None for change in job.changes
            )
        self._loop.call_soon_threadsafe(self._finish, batch, external, bool(external))

    def _finish(self, batch: list[_Job[Any]], external: list[Change], outside_writes: bool) -> None:
        """On the loop: publish other processes' changes and the batch's, then wake its
        callers.

        Publishing first means that when a write returns to its caller, every
        subscriber has already been handed its change.
        """
        committed = [change for job in batch if job.error is None for change in job.changes]
        if external or committed:
            self._on_commit([*external, *committed])
        if outside_writes:
            self._on_external()
        for job in batch:
            if job.future.get_loop() is self._loop:
                _resolve(job)
            else:  # a caller on another loop (tests): wake it on its own loop
                job.future.get_loop().call_soon_threadsafe(_resolve, job)


def _resolve(job: _Job[Any]) -> None:
    if job.future.done():  # the caller went away; the write stands regardless
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.result)
