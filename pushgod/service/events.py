"""The Event lifecycle (create, update, close) and reading events with their updates."""

from __future__ import annotations

from typing import Any

from pushgod.model.changes import ChangeKind
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import EventAction, EventIntent, EventState, advance_event, open_event
from pushgod.model.fields import MAX_PAGE
from pushgod.model.ids import new_hex_id
from pushgod.model.tokens import Scope
from pushgod.service import scoping
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.scoping import op_key, require_live_thing
from pushgod.service.sealing import seal_intent
from pushgod.store import retention, states
from pushgod.store.channels import ChannelRow
from pushgod.store.states import EVENTS
from pushgod.store.writer import WriteTx

STATES = {
    "ongoing": (EventState.ONGOING.value,),
    "closed": (EventState.CLOSED.value,),
    "all": (EventState.ONGOING.value, EventState.CLOSED.value),
}
_ACTION_WORD = {
    EventAction.CREATE: "created",
    EventAction.UPDATE: "updated",
    EventAction.CLOSE: "closed",
}


class Events:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def apply(self, credentials: Credentials, intent: EventIntent) -> dict[str, Any]:
        """Open, update or close an event; returns PushGo's reply data after the commit.

        Unlike PushGo, which keeps no events, an unknown event_id is `event_not_found`
        and a change to a closed event is `event_closed`.
        """
        now = self._ctx.clock()
        target = intent.event_id or f"new:{intent.thing_id or '-'}"
        key = op_key("event", target, intent.op_id)
        return await scoping.send(
            self._ctx,
            credentials,
            intent.channel_id,
            frozenset({Scope.PUBLISH}),
            key,
            now,
            self.producer(intent, now),
        )

    def producer(
        self, intent: EventIntent, now: int, *, new_id: str | None = None
    ) -> scoping.Produce:
        """The write of `intent`; a create names the event `new_id` (devices) or a new id."""
        op_id = intent.op_id or new_hex_id()
        keep = self._ctx.settings.retention.event_updates

        def produce(tx: WriteTx, channel: ChannelRow) -> dict[str, Any]:
            applied = seal_intent(tx, channel, "event", intent)
            if intent.thing_id:
                require_live_thing(tx, intent.channel_id, intent.thing_id)
            if intent.action is EventAction.CREATE:
                event = open_event(applied, new_id or new_hex_id(), now)
            else:
                assert intent.event_id is not None
                current = states.get(tx.tables, EVENTS, intent.channel_id, intent.event_id)
                if current is None:
                    raise PushgodError(
                        ErrorCode.EVENT_NOT_FOUND,
                        f"event {intent.event_id} does not exist in this channel",
                    )
                event = advance_event(current, applied, now)
            states.save(
                tx,
                EVENTS,
                event.event_id,
                event.to_json(),
                _ACTION_WORD[intent.action],
                applied.changes(),
            )
            retention.entity_history(tx, event.channel_id, ChangeKind.EVENT, event.event_id, keep)
            reply: dict[str, Any] = {
                "channel_id": intent.channel_id,
                "op_id": op_id,
                "event_id": event.event_id,
            }
            if event.thing_id:
                reply["thing_id"] = event.thing_id
            reply["accepted"] = True
            return reply

        return produce

    async def listing(
        self, credentials: Credentials, channel_id: str, state: str, limit: int
    ) -> dict[str, Any]:
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        wanted = STATES.get(state)
        if wanted is None:
            raise PushgodError(ErrorCode.INVALID_QUERY, "state must be ongoing, closed or all")
        rows = states.listing(
            self._ctx.store.tables, EVENTS, channel_id, wanted, limit=min(limit, MAX_PAGE)
        )
        return {"events": rows}

    async def get(self, credentials: Credentials, channel_id: str, event_id: str) -> dict[str, Any]:
        """The event's merged state and its ordered list of updates."""
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        event = states.get(self._ctx.store.tables, EVENTS, channel_id, event_id)
        if event is None:
            raise PushgodError(
                ErrorCode.EVENT_NOT_FOUND, f"event {event_id} does not exist in this channel"
            )
        updates = states.updates(self._ctx.store.tables, EVENTS, channel_id, event_id)
        return {"event": event.to_json(), "updates": updates}
