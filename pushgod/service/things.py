"""The Thing lifecycle (create, update, archive, delete) and reading state and history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pushgod.model.changes import ChangeKind
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import MAX_PAGE, compact_json
from pushgod.model.ids import new_hex_id
from pushgod.model.things import (
    Thing,
    ThingAction,
    ThingIntent,
    ThingState,
    change_thing,
    combine_changes,
    create_thing,
)
from pushgod.model.tokens import Scope
from pushgod.service import scoping
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.scoping import op_key
from pushgod.service.sealing import seal_intent
from pushgod.store import retention, states
from pushgod.store.channels import ChannelRow
from pushgod.store.states import THINGS
from pushgod.store.writer import WriteTx

STATES = {state.value: (state.value,) for state in ThingState} | {
    "all": tuple(state.value for state in ThingState)
}
_ACTION_WORD = {
    ThingAction.CREATE: "created",
    ThingAction.UPDATE: "updated",
    ThingAction.ARCHIVE: "archived",
    ThingAction.DELETE: "deleted",
}
WRITE_SCOPES = frozenset({Scope.PUBLISH, Scope.THINGS})
WRITTEN_CACHE_BYTES = 4 * 1024 * 1024
"""JSON text of the Thing states kept decoded (see `Things.stored`): thousands of
ordinary Things, and a bound on memory however large their attrs (decoded, a state
takes several times its text)."""


@dataclass(slots=True)
class _Written:
    """What this process last wrote of a Thing."""

    text: str
    """Its state as stored."""
    thing: Thing
    """The same, decoded."""
    history: int
    """Rows of its history, as far as this process knows (see `Things.bound_history`)."""


class Things:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        # Touched on the writer thread only.
        self._written: dict[tuple[str, str], _Written] = {}
        """The Things this process wrote lately, the least recently written first."""
        self._written_bytes = 0

    async def apply(self, credentials: Credentials, intent: ThingIntent) -> dict[str, Any]:
        """Create or change a thing; returns PushGo's reply data after the commit.

        Unlike PushGo, an unknown thing_id is `thing_not_found` and a deleted thing
        refuses further changes with `thing_deleted`.
        """
        now = self._ctx.clock()
        key = op_key("thing", intent.thing_id or "new", intent.op_id)
        return await scoping.send(
            self._ctx,
            credentials,
            intent.channel_id,
            WRITE_SCOPES,
            key,
            now,
            self.producer(intent, now),
        )

    def producer(
        self, intent: ThingIntent, now: int, *, new_id: str | None = None
    ) -> scoping.Produce:
        """The write of `intent`; a create names the thing `new_id` (devices) or a new id."""
        op_id = intent.op_id or new_hex_id()

        def produce(tx: WriteTx, channel: ChannelRow) -> dict[str, Any]:
            writes = self.writes(tx)
            thing = writes.apply(channel, intent, now, new_id=new_id)
            writes.flush()
            return {
                "channel_id": intent.channel_id,
                "op_id": op_id,
                "thing_id": thing.thing_id,
                "accepted": True,
            }

        return produce

    def writes(self, tx: WriteTx) -> ThingWrites:
        """Thing changes inside `tx`, each Thing's row written once however many it gets."""
        return ThingWrites(self, tx)

    def stored(self, tx: WriteTx, channel_id: str, thing_id: str) -> Thing | None:
        """The Thing as stored, decoded only when it is not the state this process last
        wrote: decoding (json, then Thing.from_json) costs several times the read."""
        text = states.get_text(tx.tables, THINGS, channel_id, thing_id)
        if text is None:
            return None
        written = self._written.get((channel_id, thing_id))
        if written is not None and written.text == text:
            return written.thing
        return THINGS.decode(json.loads(text))

    def write_row(
        self, tx: WriteTx, thing: Thing, state: dict[str, Any], text: str, changes: int
    ) -> None:
        """Write the Thing's row (`state` as JSON: `text`), after `changes` change rows."""
        key = (thing.channel_id, thing.thing_id)
        states.put(tx, THINGS, thing.thing_id, state, text)
        earlier = self._written.pop(key, None)
        if earlier is not None:
            self._written_bytes -= len(earlier.text)
        history = self.bound_history(tx, key, earlier.history + changes if earlier else None)
        self._written[key] = _Written(text, thing, history)
        self._written_bytes += len(text)
        while self._written_bytes > WRITTEN_CACHE_BYTES:
            oldest = self._written.pop(next(iter(self._written)))
            self._written_bytes -= len(oldest.text)

    def bound_history(self, tx: WriteTx, key: tuple[str, str], size: int | None) -> int:
        """Keep the Thing's newest `retention.thing_history` changes, given the size of
        its history as this process knows it (None: count it); returns the size after.

        Trimming costs a walk of that many index entries, so it runs only once the
        history is over the bound. Another process's changes (the CLI) are not counted,
        so a history may exceed the bound by those until the next trim; after a
        rolled-back write the count is high, and trimming comes early, deleting nothing.
        """
        channel_id, thing_id = key
        keep = self._ctx.settings.retention.thing_history
        if size is None:
            size = states.history_size(tx.tables, THINGS, channel_id, thing_id)
        if size > keep:
            retention.entity_history(tx, channel_id, ChangeKind.THING, thing_id, keep)
            size = keep
        return size

    async def listing(
        self, credentials: Credentials, channel_id: str, state: str, limit: int
    ) -> dict[str, Any]:
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        wanted = STATES.get(state)
        if wanted is None:
            raise PushgodError(
                ErrorCode.INVALID_QUERY, "state must be active, archived, deleted or all"
            )
        rows = states.listing(
            self._ctx.store.tables, THINGS, channel_id, wanted, limit=min(limit, MAX_PAGE)
        )
        return {"things": rows}

    async def get(self, credentials: Credentials, channel_id: str, thing_id: str) -> dict[str, Any]:
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        return {"thing": self._existing(channel_id, thing_id).to_json()}

    async def history(
        self,
        credentials: Credentials,
        channel_id: str,
        thing_id: str,
        *,
        limit: int,
        before_seq: int | None,
    ) -> dict[str, Any]:
        """The thing's changes newest first; `next_before` pages to older ones."""
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        self._existing(channel_id, thing_id)
        size = min(limit, MAX_PAGE)
        changes = states.history(
            self._ctx.store.tables, THINGS, channel_id, thing_id, limit=size, before_seq=before_seq
        )
        more = len(changes) == size
        return {"changes": changes, "next_before": changes[-1]["seq"] if changes and more else None}

    def every(self) -> list[Thing]:
        """Every Thing of every channel: the MQTT bridge republishes them on each connect."""
        return states.every(self._ctx.store.tables, THINGS)

    def _existing(self, channel_id: str, thing_id: str) -> Any:
        thing = states.get(self._ctx.store.tables, THINGS, channel_id, thing_id)
        if thing is None:
            raise PushgodError(
                ErrorCode.THING_NOT_FOUND, f"thing {thing_id} does not exist in this channel"
            )
        return thing


@dataclass(slots=True)
class _Pending:
    """A Thing changed in a transaction, whose row is not written yet."""

    thing: Thing
    """Its newest state."""
    action: str
    update: dict[str, Any] | None
    """What the changes of its change row not written yet set; None: none is waiting."""
    rows: int = 0
    """Change rows written since the Thing's row was."""


class ThingWrites:
    """The Thing changes of one transaction.

    A Thing's row is read once and written once, by `flush`, with its state after the
    transaction's last change. Consecutive updates of a Thing share one change row (a
    device's burst): the state after the last of them, and what they set together
    (combine_changes); sealed updates keep a row each. Change rows are in the order of
    their last change.
    """

    def __init__(self, things: Things, tx: WriteTx) -> None:
        self._things = things
        self._tx = tx
        self._pending: dict[tuple[str, str], _Pending] = {}
        """(channel_id, thing_id) -> the Thing, in the order of their last change."""

    def apply(
        self, channel: ChannelRow, intent: ThingIntent, now: int, *, new_id: str | None = None
    ) -> Thing:
        """Apply one change; raises PushgodError, having changed nothing, when the change
        is refused."""
        tx = self._tx
        applied = seal_intent(tx, channel, "thing", intent)
        if intent.action is ThingAction.CREATE:
            thing = create_thing(applied, new_id or new_hex_id(), now)
            pending = self._pending.get((thing.channel_id, thing.thing_id))
        else:
            assert intent.thing_id is not None
            pending = self._pending.get((intent.channel_id, intent.thing_id))
            current = pending.thing if pending else self._stored(intent.channel_id, intent.thing_id)
            thing = change_thing(current, applied, now)
        key = (thing.channel_id, thing.thing_id)
        action, update = _ACTION_WORD[intent.action], applied.changes()
        if pending is None:
            pending = _Pending(thing, action, update)
        elif pending.update is not None and _combinable(pending, action, update):
            pending.update = combine_changes(pending.update, update)
        else:
            if pending.update is not None:  # its row comes before this change's
                self._emit_until(key)
            pending.action, pending.update = action, update
        pending.thing = thing
        self._pending.pop(key, None)
        self._pending[key] = pending
        return thing

    def flush(self) -> None:
        """Write the change rows waiting, then each changed Thing's row."""
        for pending in self._pending.values():
            state = pending.thing.to_json()
            text = compact_json(state)
            if pending.update is not None:
                self._emit(pending, state, text)
            self._things.write_row(self._tx, pending.thing, state, text, pending.rows)
        self._pending.clear()

    def _stored(self, channel_id: str, thing_id: str) -> Thing:
        thing = self._things.stored(self._tx, channel_id, thing_id)
        if thing is None:
            raise PushgodError(
                ErrorCode.THING_NOT_FOUND, f"thing {thing_id} does not exist in this channel"
            )
        return thing

    def _emit_until(self, key: tuple[str, str]) -> None:
        """Write the change rows waiting, up to `key`'s, so that rows stay in the order
        of their last change."""
        for each, pending in self._pending.items():
            if pending.update is not None:
                state = pending.thing.to_json()
                self._emit(pending, state, compact_json(state))
            if each == key:
                return

    def _emit(self, pending: _Pending, state: dict[str, Any], text: str) -> None:
        assert pending.update is not None
        thing = pending.thing
        states.emit(self._tx, THINGS, thing.thing_id, state, text, pending.action, pending.update)
        pending.update = None
        pending.rows += 1


def _combinable(pending: _Pending, action: str, update: dict[str, Any]) -> bool:
    """Whether a change may share the change row waiting: both updates, neither sealed
    (a reader opens a row's envelopes over its plain fields, so their order matters)."""
    assert pending.update is not None
    word = _ACTION_WORD[ThingAction.UPDATE]
    return (
        pending.action == word == action
        and "sealed" not in pending.update
        and "sealed" not in update
    )
