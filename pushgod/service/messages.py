"""Sending and listing Messages."""

from __future__ import annotations

from typing import Any

from pushgod.model.fields import MAX_PAGE
from pushgod.model.ids import new_hex_id
from pushgod.model.messages import MessageIntent
from pushgod.model.tokens import Scope
from pushgod.service import scoping
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.scoping import op_key, require_live_thing
from pushgod.service.sealing import seal_intent
from pushgod.store import messages as message_rows
from pushgod.store.channels import ChannelRow
from pushgod.store.writer import WriteTx


class Messages:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def send(self, credentials: Credentials, intent: MessageIntent) -> dict[str, Any]:
        """Store a message; returns PushGo's reply data once the message is committed.

        A repeated op_id returns the first reply and stores nothing.
        """
        now = self._ctx.clock()
        key = op_key("message", intent.thing_id or "-", intent.op_id)
        return await scoping.send(
            self._ctx,
            credentials,
            intent.channel_id,
            frozenset({Scope.PUBLISH}),
            key,
            now,
            self.producer(intent, now),
        )

    def producer(self, intent: MessageIntent, now: int) -> scoping.Produce:
        op_id = intent.op_id or new_hex_id()

        def produce(tx: WriteTx, channel: ChannelRow) -> dict[str, Any]:
            if intent.thing_id:
                require_live_thing(tx, intent.channel_id, intent.thing_id)
            applied = seal_intent(tx, channel, "message", intent)
            message: dict[str, Any] = {
                "message_id": new_hex_id(),
                "channel_id": intent.channel_id,
                "op_id": op_id,
                "thing_id": intent.thing_id,
                "title": applied.title,
                "body": applied.body,
                "severity": intent.severity.value,
                "url": applied.url,
                "images": list(applied.images),
                "tags": list(intent.tags),
                "metadata": applied.metadata,
                "ciphertext": applied.ciphertext,
                "occurred_at": intent.occurred_at if intent.occurred_at is not None else now,
                "created_at": now,
                "expires_at": intent.expires_at,
            }
            if applied.sealed:
                message["sealed"] = list(applied.sealed)
            message_rows.insert(tx, message)
            reply: dict[str, Any] = {
                "channel_id": intent.channel_id,
                "op_id": op_id,
                "message_id": message["message_id"],
            }
            if intent.thing_id:
                reply["thing_id"] = intent.thing_id
            reply["accepted"] = True
            return reply

        return produce

    async def recent(
        self,
        credentials: Credentials,
        channel_id: str,
        *,
        limit: int,
        before_seq: int | None,
        since_ms: int | None,
    ) -> dict[str, Any]:
        """Unexpired messages newest first; `next_before` pages to older ones."""
        await self._ctx.auth.channel_access(channel_id, credentials, frozenset({Scope.SUBSCRIBE}))
        items = message_rows.recent(
            self._ctx.store.tables,
            channel_id,
            self._ctx.clock(),
            limit=min(limit, MAX_PAGE),
            before_seq=before_seq,
            since_ms=since_ms,
        )
        more = len(items) == min(limit, MAX_PAGE)
        return {"messages": items, "next_before": items[-1]["seq"] if items and more else None}
