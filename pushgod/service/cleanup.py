"""The cleanup that always runs: expired messages, retention, closed events, old op ids,
expired OAuth codes, tokens, grants and bind sessions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from pushgod.model.oauth import UNUSED_CLIENT_AGE_MS
from pushgod.model.times import DAY_MS
from pushgod.service.context import Context
from pushgod.store import channels as channel_rows
from pushgod.store import clients as client_rows
from pushgod.store import oauth as oauth_rows
from pushgod.store import retention
from pushgod.store.writer import WriteTx

log = logging.getLogger(__name__)

OP_ID_AGE_MS = 7 * DAY_MS
"""How long a repeated op_id is recognised (PushGo's small profile keeps 7 days)."""


class Cleanup:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def run_once(self) -> int:
        """Delete everything that is due; returns the number of rows deleted."""
        now = self._ctx.clock()
        settings = self._ctx.settings.retention
        deleted = await self._until_done(lambda tx: retention.expired_messages(tx, now))
        for channel in channel_rows.list_all(self._ctx.store.tables):
            age = channel.retention_age_ms or settings.message_age
            count = channel.retention_count or settings.messages_per_channel
            deleted += await self._until_done(
                partial(retention.old_messages, channel_id=channel.id, created_before=now - age)
            )
            deleted += await self._until_done(
                partial(retention.excess_messages, channel_id=channel.id, keep=count)
            )
        deleted += await self._until_done(
            lambda tx: retention.closed_events(tx, now - settings.closed_event_age)
        )
        deleted += await self._until_done(lambda tx: retention.old_ops(tx, now - OP_ID_AGE_MS))
        deleted += await self._ctx.store.write(lambda tx: client_rows.expired_codes(tx, now))
        deleted += await self._ctx.store.write(
            lambda tx: oauth_rows.delete_expired(tx, now, now - UNUSED_CLIENT_AGE_MS)
        )
        if deleted:
            log.info("cleanup deleted %d rows", deleted)
        return deleted

    async def _until_done(self, chunk: Callable[[WriteTx], int]) -> int:
        """Repeat a bounded delete until it finds nothing, one short write at a time."""
        total = 0
        while count := await self._ctx.store.write(chunk):
            total += count
        return total
