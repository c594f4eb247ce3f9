"""The Thing lifecycle (create, update, archive, delete) and reading state and history."""

from __future__ import annotations

from typing import Any

from pushgod.model.changes import ChangeKind
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import MAX_PAGE
from pushgod.model.ids import new_hex_id
from pushgod.model.things import (
    Thing,
    ThingAction,
    ThingIntent,
    ThingState,
    change_thing,
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


class Things:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

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
        keep = self._ctx.settings.retention.thing_history

        def produce(tx: WriteTx, channel: ChannelRow) -> dict[str, Any]:
            applied = seal_intent(tx, channel, "thing", intent)
            if intent.action is ThingAction.CREATE:
                thing = create_thing(applied, new_id or new_hex_id(), now)
            else:
                assert intent.thing_id is not None
                current = states.get(tx.tables, THINGS, intent.channel_id, intent.thing_id)
                if current is None:
                    raise PushgodError(
                        ErrorCode.THING_NOT_FOUND,
                        f"thing {intent.thing_id} does not exist in this channel",
                    )
                thing = change_thing(current, applied, now)
            states.save(
                tx,
                THINGS,
                thing.thing_id,
                thing.to_json(),
                _ACTION_WORD[intent.action],
                applied.changes(),
            )
            retention.entity_history(tx, thing.channel_id, ChangeKind.THING, thing.thing_id, keep)
            reply = {
                "channel_id": intent.channel_id,
                "op_id": op_id,
                "thing_id": thing.thing_id,
                "accepted": True,
            }
            return reply

        return produce

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
