"""Channel administration and the channel summary of the read API."""

from __future__ import annotations

from typing import Any

from pushgod.model.channels import (
    MAX_RETENTION_COUNT,
    MIN_RETENTION_AGE_MS,
    check_channel_name,
    check_password,
    generate_password,
)
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import new_channel_id, parse_channel_id
from pushgod.model.sealing import parse_policy
from pushgod.model.tokens import Scope
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.store import channels as channel_rows
from pushgod.store import messages as message_rows
from pushgod.store import states
from pushgod.store.channels import ChannelRow

_KEEP = object()


class Channels:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def create(
        self,
        actor: Credentials | None,
        name: str,
        password: str | None = None,
        *,
        retention_count: int | None = None,
        retention_age_ms: int | None = None,
    ) -> tuple[ChannelRow, str]:
        """A new channel and its password (generated when not given; shown only now)."""
        self._ctx.auth.admin(actor)
        name = check_channel_name(name)
        password = check_password(password) if password is not None else generate_password()
        _check_retention(retention_count, retention_age_ms)
        now = self._ctx.clock()
        row = ChannelRow(
            id=new_channel_id(),
            name=name,
            password_hash=await self._ctx.passwords.hash(password),
            retention_count=retention_count,
            retention_age_ms=retention_age_ms,
            created_at=now,
            updated_at=now,
        )
        await self._ctx.store.write(lambda tx: channel_rows.insert(tx, row))
        return row, password

    def list(self, actor: Credentials | None) -> list[ChannelRow]:
        self._ctx.auth.admin(actor)
        return channel_rows.list_all(self._ctx.store.tables)

    def count(self) -> int:
        return channel_rows.count(self._ctx.store.tables)

    async def update(
        self,
        actor: Credentials | None,
        channel_id: str,
        *,
        name: str | None = None,
        password: str | None = None,
        retention_count: Any = _KEEP,
        retention_age_ms: Any = _KEEP,
        e2ee: Any = _KEEP,
    ) -> ChannelRow:
        """Rename, change the password, the retention or the sealing policy (a list of
        fields, or None for off); a new password works at once and ends the streams
        opened with the old one."""
        self._ctx.auth.admin(actor)
        channel_id = parse_channel_id(channel_id)
        values: dict[str, Any] = {}
        actions = []
        if name is not None:
            values["name"] = check_channel_name(name)
            actions.append("renamed")
        if password is not None:
            values["password_hash"] = await self._ctx.passwords.hash(check_password(password))
            actions.append("password_changed")
        if retention_count is not _KEEP:
            values["retention_count"] = retention_count
        if retention_age_ms is not _KEEP:
            values["retention_age_ms"] = retention_age_ms
        if retention_count is not _KEEP or retention_age_ms is not _KEEP:
            _check_retention(values.get("retention_count"), values.get("retention_age_ms"))
            actions.append("retention_changed")
        if e2ee is not _KEEP:
            values["e2ee"] = None if e2ee is None else parse_policy(e2ee).text()
            actions.append("e2ee_changed")
        if not values:
            raise PushgodError(ErrorCode.INVALID_JSON_DATA, "nothing to change")
        now = self._ctx.clock()
        row = await self._ctx.store.write(
            lambda tx: channel_rows.update(tx, channel_id, ",".join(actions), now, **values)
        )
        if row is None:
            raise PushgodError(ErrorCode.CHANNEL_NOT_FOUND, f"channel {channel_id} does not exist")
        if password is not None:
            self._ctx.hub.access_changed()
        return row

    async def delete(self, actor: Credentials | None, channel_id: str) -> None:
        """Delete a channel with all its messages, events, things and tokens."""
        self._ctx.auth.admin(actor)
        channel_id = parse_channel_id(channel_id)
        if not await self._ctx.store.write(lambda tx: channel_rows.delete(tx, channel_id)):
            raise PushgodError(ErrorCode.CHANNEL_NOT_FOUND, f"channel {channel_id} does not exist")
        self._ctx.hub.access_changed()

    async def summary(self, credentials: Credentials, channel_id: str) -> dict[str, Any]:
        """Name and counts, for a reader of the channel."""
        channel = await self._ctx.auth.channel_access(
            channel_id, credentials, frozenset({Scope.SUBSCRIBE})
        )
        tables = self._ctx.store.tables
        events = states.count_by_state(tables, states.EVENTS, channel_id)
        return {
            "channel_id": channel.id,
            "name": channel.name,
            "created_at": channel.created_at,
            "counts": {
                "messages": message_rows.count_live(tables, channel_id, self._ctx.clock()),
                "events": {"ongoing": events.get("ONGOING", 0), "closed": events.get("CLOSED", 0)},
                "things": states.count_by_state(tables, states.THINGS, channel_id),
            },
        }


def _check_retention(count: int | None, age_ms: int | None) -> None:
    if count is not None and not 1 <= count <= MAX_RETENTION_COUNT:
        raise PushgodError(
            ErrorCode.INVALID_FIELD, f"retention_count must be from 1 to {MAX_RETENTION_COUNT}"
        )
    if age_ms is not None and age_ms < MIN_RETENTION_AGE_MS:
        raise PushgodError(
            ErrorCode.INVALID_FIELD, f"retention_age must be at least {MIN_RETENTION_AGE_MS} ms"
        )
