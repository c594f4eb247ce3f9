"""Streams: a channel's items replayed from the change feed, then live from the hub.

A stream subscribes to the hub before it reads the replay from the store, so a change
committed meanwhile is in one or the other (or both: items are sent in sequence order
and anything at or below the last sent sequence number is skipped). Resuming from the
last sequence number a client saw therefore never skips or repeats an item, also
across a restart, since the store holds every committed change.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pushgod.model.changes import Change, ChangeKind, stream_item
from pushgod.model.since import Since
from pushgod.model.tokens import Scope
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.hub import Hub
from pushgod.store import feed

KEEPALIVE = object()
"""Yielded by `Stream.items` when nothing happened for a keepalive interval."""

Batch = list["Item"]
"""What `Stream.items` yields for items: all that were ready at once, to write in one go."""


ENCODED_ITEMS = 1024
"""Recent items kept encoded: every subscriber of a channel sends the same bytes."""


@dataclass(frozen=True, slots=True)
class Item:
    """A stream item, encoded once for every subscriber: as JSON, an SSE event, a line."""

    seq: int
    json: str
    sse: bytes
    line: bytes

    @classmethod
    def of(cls, change: Change) -> Item:
        text = json.dumps(stream_item(change), separators=(",", ":"), ensure_ascii=False)
        event = f"id: {change.seq}\nevent: {change.kind.value}\ndata: {text}\n\n"
        return cls(change.seq, text, event.encode(), (text + "\n").encode())


@dataclass(frozen=True, slots=True)
class Closing:
    """The last thing a stream says before it ends on its own: why, and where to resume."""

    reason: str
    resume_after: int

    def to_json(self) -> dict[str, Any]:
        return {"type": "closed", "reason": self.reason, "resume_after": self.resume_after}


class _Subscription:
    """One stream's share of the hub: a bounded buffer of the channel's changes."""

    def __init__(
        self,
        hub: Hub,
        channel_id: str,
        kinds: frozenset[ChangeKind],
        size: int,
        on_close: Callable[[_Subscription], None],
    ) -> None:
        self._on_close = on_close
        self._channel_id = channel_id
        self._kinds = kinds
        self._size = size
        self._changes: deque[Change] = deque()
        self._wakeup = asyncio.Event()
        self._active = False  # received something since the last keepalive tick
        self._keepalive_due = False
        self.overflowed = False
        self.closed = False
        self._unsubscribe = hub.subscribe(self._receive)

    def _receive(self, changes: list[Change]) -> None:
        received = False
        for change in changes:
            if change.channel_id != self._channel_id or change.kind not in self._kinds:
                continue
            if len(self._changes) >= self._size:
                # A consumer this far behind is closed rather than buffered without bound;
                # it resumes from its last sequence number.
                self.overflowed = True
                self.close()
                return
            self._changes.append(change)
            received = True
        if received:
            self._active = True
            self._wakeup.set()

    def tick(self) -> None:
        """A keepalive interval passed: one is due if nothing arrived during it."""
        if not self._active:
            self._keepalive_due = True
            self._wakeup.set()
        self._active = False

    async def next(self) -> list[Change] | None:
        """The changes received so far, waiting for some; None when a keepalive is due."""
        if not self._changes and not self.closed and not self._keepalive_due:
            self._wakeup.clear()
            await self._wakeup.wait()
        if not self._changes and self._keepalive_due and not self.closed:
            self._keepalive_due = False
            return None
        self._keepalive_due = False
        taken = list(self._changes)
        self._changes.clear()
        return taken

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._unsubscribe()
            self._on_close(self)
            self._wakeup.set()


class Stream:
    def __init__(
        self,
        ctx: Context,
        subscription: _Subscription,
        channel_id: str,
        kinds: frozenset[ChangeKind],
        encode: Callable[[Change], Item],
    ) -> None:
        self._encode = encode
        self._ctx = ctx
        self._subscription = subscription
        self._channel_id = channel_id
        self._kinds = kinds

    async def items(self, since: Since, *, poll: bool) -> AsyncGenerator[Batch | object, None]:
        """Batches of items in sequence order, KEEPALIVE when idle, and a Closing at the
        end when the stream ends on its own (too slow a consumer, or shutdown)."""
        last = since.after_seq
        try:
            batch: Batch = []
            for change in self._replay(since):
                batch.append(self._encode(change))
                last = change.seq
                if len(batch) == feed.PAGE:
                    yield batch
                    batch = []
            if batch:
                yield batch
            if poll:
                return
            while True:
                changes = await self._subscription.next()
                if changes is None:
                    yield KEEPALIVE
                    continue
                now = self._ctx.clock()
                batch = []
                for change in changes:
                    if change.seq <= last or _expired(change, now):
                        continue
                    batch.append(self._encode(change))
                    last = change.seq
                if batch:
                    yield batch
                if self._subscription.closed:
                    reason = "too far behind" if self._subscription.overflowed else "shutdown"
                    yield Closing(reason, last)
                    return
        finally:
            self._subscription.close()

    def _replay(self, since: Since) -> Iterable[Change]:
        tables, now = self._ctx.store.tables, self._ctx.clock()
        if not since.replay:
            return []
        if since.latest:
            newest = feed.newest(tables, self._channel_id, self._kinds, now)
            return [newest] if newest else []
        return feed.replay(
            tables, self._channel_id, self._kinds, now, after_seq=since.after_seq, at_ms=since.at_ms
        )


def _expired(change: Change, now_ms: int) -> bool:
    expires_at = change.data.get("expires_at") if change.kind is ChangeKind.MESSAGE else None
    return expires_at is not None and expires_at <= now_ms


class Streams:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._open: set[_Subscription] = set()
        self._encoded: OrderedDict[int, Item] = OrderedDict()
        self._ticker: asyncio.Task[None] | None = None

    async def open(
        self, credentials: Credentials, channel_id: str, kinds: frozenset[ChangeKind]
    ) -> Stream:
        """Authorize a reader of the channel and subscribe it to the hub."""
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        subscription = _Subscription(
            self._ctx.hub, channel_id, kinds, self._ctx.settings.streams.buffer, self._open.discard
        )
        self._open.add(subscription)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="pushgod.streams.keepalive")
        return Stream(self._ctx, subscription, channel_id, kinds, self._encode)

    async def _tick(self) -> None:
        """One timer for every stream's keepalive, rather than one per wait per stream."""
        interval_s = self._ctx.settings.streams.keepalive / 1000
        while True:
            await asyncio.sleep(interval_s)
            for subscription in list(self._open):
                subscription.tick()

    def _encode(self, change: Change) -> Item:
        item = self._encoded.get(change.seq)
        if item is None:
            item = self._encoded[change.seq] = Item.of(change)
            if len(self._encoded) > ENCODED_ITEMS:
                self._encoded.popitem(last=False)
        return item

    def close_all(self) -> None:
        """End every open stream (at shutdown): each sends its Closing and returns."""
        for subscription in list(self._open):
            subscription.close()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
