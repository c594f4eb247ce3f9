"""In-chat channel binding: an assistant asks, the user proves a channel in the browser.

PushGo's flow (gateway reference §3.4 item 7): the MCP tool `pushgo.channel.bind.start`
creates a session and gets a URL; the user opens it, enters a channel's id and password,
and the channel joins (or, for `revoke`, leaves) the assistant's grant. The session id
is the capability, so it is long, stored hashed, single-use and lives ten minutes.
"""

from __future__ import annotations

from typing import Any

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id
from pushgod.model.oauth import (
    BIND_SESSION_LIFETIME_MS,
    BIND_SESSION_PREFIX,
    MAX_GRANT_CHANNELS,
    BindAction,
    Principal,
    check_redirect_uri,
    new_credential,
)
from pushgod.model.tokens import token_hash
from pushgod.service.context import Context
from pushgod.service.oauth import OAuth
from pushgod.store import bindings as session_rows
from pushgod.store import channels as channel_rows
from pushgod.store import oauth as oauth_rows
from pushgod.store.bindings import BindSessionRow
from pushgod.store.channels import ChannelRow
from pushgod.store.writer import WriteTx

POLL_AFTER_MS = 1500
PAGES = {BindAction.BIND: "/mcp/bind/session", BindAction.REVOKE: "/mcp/revoke/session"}


class Bindings:
    def __init__(self, ctx: Context, oauth: OAuth) -> None:
        self._ctx = ctx
        self._oauth = oauth

    async def start(
        self,
        principal: Principal,
        issuer: str,
        *,
        action: str = BindAction.BIND,
        requested_channel_id: str | None = None,
        redirect_uri: str | None = None,
    ) -> dict[str, Any]:
        """A new bind session for the principal's grant, and the page the user completes."""
        try:
            bind_action = BindAction(action)
        except ValueError:
            raise PushgodError(ErrorCode.INVALID_FIELD, "action must be bind or revoke") from None
        if requested_channel_id is not None:
            requested_channel_id = parse_channel_id(requested_channel_id)
        if redirect_uri is not None:
            self._check_redirect(principal, check_redirect_uri(redirect_uri))
        session_id = new_credential(BIND_SESSION_PREFIX)
        now = self._ctx.clock()
        row = BindSessionRow(
            hash=token_hash(session_id),
            grant_id=principal.grant_id,
            action=bind_action.value,
            requested_channel_id=requested_channel_id,
            redirect_uri=redirect_uri,
            created_at=now,
            expires_at=now + BIND_SESSION_LIFETIME_MS,
            completed_at=None,
            channel_id=None,
            reported=0,
        )
        await self._ctx.store.write(lambda tx: session_rows.insert(tx, row))
        return {
            "bind_session_id": session_id,
            "bind_url": f"{issuer}{PAGES[bind_action]}?bind_session_id={session_id}",
            "action": bind_action.value,
            "expires_at": row.expires_at // 1000,
            "poll_after_ms": POLL_AFTER_MS,
        }

    def _check_redirect(self, principal: Principal, redirect_uri: str) -> None:
        """Only somewhere the client itself may be sent back to: no open redirects."""
        client = self._oauth.client(principal.client_id)
        if client is None or not client.check_redirect_uri(redirect_uri):
            raise PushgodError(
                ErrorCode.INVALID_REDIRECT_URI,
                "redirect_uri must be one of the client's registered redirect URIs",
            )

    def page(self, session_id: str) -> BindSessionRow:
        """The open session behind a bind page; raises when it is unknown, done or expired."""
        row = session_rows.get(self._ctx.store.tables, token_hash(session_id))
        if row is None:
            raise PushgodError(ErrorCode.BIND_SESSION_NOT_FOUND, "this bind link is not valid")
        if row.completed_at is not None:
            raise PushgodError(ErrorCode.BIND_SESSION_COMPLETED, "this bind link was already used")
        if row.expires_at <= self._ctx.clock():
            raise PushgodError(ErrorCode.BIND_SESSION_EXPIRED, "this bind link has expired")
        return row

    async def complete(
        self, session_id: str, channel_id: str, password: str, address: str
    ) -> tuple[BindSessionRow, ChannelRow]:
        """The user proved `channel_id`: add it to the grant (or remove it), once."""
        row = self.page(session_id)
        channel = await self._oauth.check_channel(channel_id, password, address)
        now = self._ctx.clock()

        def write(tx: WriteTx) -> None:
            session_rows.complete(tx, row.hash, channel.id, now)
            if row.action == BindAction.REVOKE:
                oauth_rows.remove_grant_channel(tx, row.grant_id, channel.id)
                return
            channels = oauth_rows.grant_channels(tx.tables, row.grant_id)
            if channel.id not in channels and len(channels) >= MAX_GRANT_CHANNELS:
                raise PushgodError(
                    ErrorCode.INVALID_FIELD,
                    f"an assistant may hold at most {MAX_GRANT_CHANNELS} channels",
                )
            oauth_rows.add_grant_channel(tx, row.grant_id, channel.id, now)

        await self._ctx.store.write(write)
        self._ctx.hub.access_changed()
        return row, channel

    async def status(self, principal: Principal, session_id: str) -> dict[str, Any]:
        """pending, completed or expired; `resources_changed` is true once, after completion."""
        row = session_rows.get(self._ctx.store.tables, token_hash(session_id))
        if row is None or row.grant_id != principal.grant_id:
            raise PushgodError(
                ErrorCode.BIND_SESSION_NOT_FOUND, "no bind session with this id for this client"
            )
        if row.completed_at is not None:
            status = "completed"
        elif row.expires_at <= self._ctx.clock():
            status = "expired"
        else:
            status = "pending"
        changed = False
        if status == "completed" and not row.reported:
            changed = await self._ctx.store.write(
                lambda tx: session_rows.mark_reported(tx, row.hash)
            )
        channel = row.channel_id and channel_rows.get(self._ctx.store.tables, row.channel_id)
        return {
            "status": status,
            "action": row.action,
            **channel_card(row.channel_id, channel.name if channel else None),
            "resources_changed": changed,
            "expires_at": row.expires_at // 1000,
        }

    def channels(self, principal: Principal) -> list[dict[str, Any]]:
        """The channels the principal's grant holds, as PushGo lists them."""
        rows = oauth_rows.granted_channels(self._ctx.store.tables, principal.grant_id)
        return [
            {
                **channel_card(channel_id, name),
                "granted_at": added_at // 1000,
                "expires_at": None,
                "status": "active",
            }
            for channel_id, name, added_at in rows
        ]

    async def unbind(self, principal: Principal, channel_id: str) -> dict[str, Any]:
        """Take a channel out of the principal's grant; `removed` says whether it was in."""
        channel_id = parse_channel_id(channel_id)
        channel = channel_rows.get(self._ctx.store.tables, channel_id)
        removed = await self._ctx.store.write(
            lambda tx: oauth_rows.remove_grant_channel(tx, principal.grant_id, channel_id)
        )
        if removed:
            self._ctx.hub.access_changed()
        return {
            "removed": removed,
            **channel_card(channel_id, channel.name if channel and removed else None),
            "resources_changed": removed,
        }


def channel_card(channel_id: str | None, name: str | None) -> dict[str, Any]:
    """PushGo's way of naming a channel to an assistant: id, name and "name (id)"."""
    display = f"{name} ({channel_id})" if name and channel_id else channel_id
    return {"channel_id": channel_id, "channel_name": name, "channel_display": display}
