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
from pushgod.model.tokens import Scope, token_hash
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.hub import Hub
from pushgod.store import channels as channel_rows
from pushgod.store import feed
from pushgod.store import tokens as token_rows
from pushgod.store.tables import Tables

KEEPALIVE = object()
"""Yielded by `Stream.items` when nothing happened for a keepalive interval."""

Batch = list["Item"]
"""What `Stream.items` yields for items: all that were ready at once, to write in one go."""


DirectWriter = Callable[[Batch], bool]
"""A consumer's way to take live items at once, inside the hub's publish, while it waits
for more: the HTTP writer puts them straight on its connection, which saves a task wakeup
per stream and item. It returns False when it cannot take them now (its connection is
backed up); they then wait in the stream's bounded buffer and come out of `Stream.items`
as usual, so a consumer that stops reading is still closed as too far behind."""

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
    """One stream's share of the hub: a bounded buffer of the channel's changes, or,
    while its consumer waits with nothing buffered or due, a direct hand-over
    (`deliver`, set by `Stream.items` for a `DirectWriter`)."""

    def __init__(
        self,
        hub: Hub,
        channel_id: str,
        kinds: frozenset[ChangeKind],
        size: int,
        on_close: Callable[[_Subscription], None],
    ) -> None:
        self._on_close = on_close
        self._kinds = kinds
        self._size = size
        self._changes: deque[Change] = deque()
        self._wakeup = asyncio.Event()
        self._active = False  # received something since the last keepalive tick
        self._keepalive_due = False
        self._waiting = False  # the consumer waits in next()
        self.deliver: Callable[[list[Change]], bool] | None = None
        self.overflowed = False
        self.closed = False
        self.reason = "shutdown"
        self._unsubscribe = hub.subscribe(self._receive, channel_id)

    def _receive(self, changes: list[Change]) -> None:
        kinds = self._kinds
        matching = changes  # the hub's own list when all match: see Streams._live
        for change in changes:
            if change.kind not in kinds:
                matching = [c for c in changes if c.kind in kinds]
                if not matching:
                    return
                break
        self._active = True
        # Straight to the consumer only while it waits and nothing is buffered or due
        # (anything buffered, a keepalive or the close sets the wakeup): so items still
        # go out in order, and a consumer that is busy writing gets the bounded buffer.
        waiting = self._waiting and not self._wakeup.is_set()
        if waiting and self.deliver is not None and self.deliver(matching):
            return
        for change in matching:
            if len(self._changes) >= self._size:
                # A consumer this far behind is closed rather than buffered without bound;
                # it resumes from its last sequence number.
                self.overflowed = True
                self.close()
                return
            self._changes.append(change)
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
            self._waiting = True
            try:
                await self._wakeup.wait()
            finally:
                self._waiting = False
        if not self._changes and self._keepalive_due and not self.closed:
            self._keepalive_due = False
            return None
        self._keepalive_due = False
        taken = list(self._changes)
        self._changes.clear()
        return taken

    def close(self, reason: str | None = None) -> None:
        """End the stream; `reason` is what its Closing says (default: shutdown)."""
        if not self.closed:
            self.closed = True
            self.reason = reason or ("too far behind" if self.overflowed else "shutdown")
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
        live: Callable[[list[Change]], Batch],
    ) -> None:
        self._encode = encode
        self._live = live
        self._ctx = ctx
        self._subscription = subscription
        self._channel_id = channel_id
        self._kinds = kinds
        self._last = 0  # the sequence number of the last item sent
        self._direct: DirectWriter | None = None

    async def items(
        self, since: Since, *, poll: bool, direct: DirectWriter | None = None
    ) -> AsyncGenerator[Batch | object, None]:
        """Batches of items in sequence order, KEEPALIVE when idle, and a Closing at the
        end when the stream ends on its own (too slow a consumer, or shutdown).

        With `direct`, live items that arrive while the consumer waits for the next thing
        from here are handed to it instead of yielded (see `DirectWriter`); either way
        every item goes out once, in sequence order."""
        subscription = self._subscription
        self._last = since.after_seq
        try:
            batch: Batch = []
            for change in self._replay(since):
                batch.append(self._encode(change))
                self._last = change.seq
                if len(batch) == feed.PAGE:
                    yield batch
                    batch = []
            if batch:
                yield batch
            if poll:
                return
            if direct is not None:
                self._direct = direct
                subscription.deliver = self._hand_over
            while True:
                changes = await subscription.next()
                if changes is None:
                    yield KEEPALIVE
                    continue
                batch = self._unsent(changes)
                if batch:
                    self._last = batch[-1].seq
                    yield batch
                if subscription.closed:
                    yield Closing(subscription.reason, self._last)
                    return
        finally:
            subscription.deliver = None
            subscription.close()

    def _unsent(self, changes: list[Change]) -> Batch:
        """The items of changes (in sequence order) not sent yet and not expired."""
        last, now, encode = self._last, self._ctx.clock(), self._encode
        return [encode(c) for c in changes if c.seq > last and not _expired(c, now)]

    def _hand_over(self, changes: list[Change]) -> bool:
        """From the hub while the consumer waits: give it the new items at once."""
        # Only a change the replay already read can be at or below the last one sent.
        batch = self._live(changes) if changes[0].seq > self._last else self._unsent(changes)
        if batch:
            assert self._direct is not None  # set together with subscription.deliver
            if not self._direct(batch):
                return False
            self._last = batch[-1].seq
        return True

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


REVOKED = "revoked"
"""The Closing reason of a stream whose credentials stopped working: do not reconnect."""


@dataclass(frozen=True, slots=True)
class _Access:
    """What let a stream in, to check again when credentials change: the channel and
    either the password hash it matched or the hash of its token."""

    channel_id: str
    password_hash: str | None
    token_hash: str | None


class Streams:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._open: set[_Subscription] = set()
        self._access: dict[_Subscription, _Access] = {}
        self._encoded: OrderedDict[int, Item] = OrderedDict()
        self._lived: tuple[list[Change], Batch] = ([], [])
        self._ticker: asyncio.Task[None] | None = None
        ctx.hub.watch_access(self.revalidate)

    async def open(
        self, credentials: Credentials, channel_id: str, kinds: frozenset[ChangeKind]
    ) -> Stream:
        """Authorize a reader of the channel and subscribe it to the hub."""
        channel = await self._ctx.auth.channel_access(
            channel_id, credentials, frozenset({Scope.SUBSCRIBE})
        )
        subscription = _Subscription(
            self._ctx.hub, channel_id, kinds, self._ctx.settings.streams.buffer, self._forget
        )
        self._open.add(subscription)
        self._access[subscription] = _Access(
            channel.id,
            channel.password_hash if credentials.password is not None else None,
            token_hash(credentials.bearer)
            if credentials.password is None and credentials.bearer
            else None,
        )
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="pushgod.streams.keepalive")
        return Stream(self._ctx, subscription, channel_id, kinds, self._encode, self._live)

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

    def _live(self, changes: list[Change]) -> Batch:
        """The items of live changes (in sequence order) that are not expired.

        The hub hands every stream of a channel the same list, so with a thousand streams
        this runs once a commit and they all get the same batch, which the HTTP writer
        then frames once too."""
        if self._lived[0] is not changes:
            now = self._ctx.clock()
            self._lived = (changes, [self._encode(c) for c in changes if not _expired(c, now)])
        return self._lived[1]

    @property
    def open_count(self) -> int:
        """Streams open now (a stream closed as too far behind no longer counts)."""
        return len(self._open)

    def _forget(self, subscription: _Subscription) -> None:
        self._open.discard(subscription)
        self._access.pop(subscription, None)

    def revalidate(self) -> None:
        """End at once every stream whose token was revoked or expired, or whose channel
        was deleted or its password changed (the hub calls this on such changes)."""
        tables, now = self._ctx.store.tables, self._ctx.clock()
        allowed: dict[_Access, bool] = {}
        for subscription, access in list(self._access.items()):
            if access not in allowed:
                allowed[access] = _still_allowed(tables, access, now)
            if not allowed[access]:
                subscription.close(REVOKED)

    def close_all(self) -> None:
        """End every open stream (at shutdown): each sends its Closing and returns."""
        for subscription in list(self._open):
            subscription.close()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None


def _still_allowed(tables: Tables, access: _Access, now_ms: int) -> bool:
    if access.token_hash is not None:
        token = token_rows.by_hash(tables, access.token_hash)
        return token is not None and (token.expires_at is None or token.expires_at > now_ms)
    channel = channel_rows.get(tables, access.channel_id)
    return channel is not None and channel.password_hash == access.password_hash
