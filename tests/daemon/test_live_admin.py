"""The CLI changes a running daemon's data directory, and the daemon honours it at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from .harness import Daemon, basic_auth


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as opened:
        yield opened


async def _send(
    session: aiohttp.ClientSession,
    daemon: Daemon,
    channel_id: str,
    *,
    password: str | None = None,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    body = {"channel_id": channel_id, "title": "live admin"}
    headers = {}
    if password is not None:
        body["password"] = password
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(f"{daemon.url}/message", json=body, headers=headers) as reply:
        envelope: dict[str, Any] = await reply.json()
        return reply.status, envelope


async def _read(
    session: aiohttp.ClientSession, daemon: Daemon, channel_id: str, password: str
) -> tuple[int, dict[str, Any]]:
    async with session.get(
        f"{daemon.url}/api/v1/channels/{channel_id}/messages",
        headers=basic_auth(channel_id, password),
    ) as reply:
        envelope: dict[str, Any] = await reply.json()
        return reply.status, envelope


async def _cli_json(daemon: Daemon, *args: str) -> dict[str, Any]:
    return await asyncio.to_thread(daemon.cli_json, *args)


async def test_new_channel_accepts_sends_at_once(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    created = await _cli_json(daemon, "channel", "create", "made while running")
    channel_id, password = created["channel_id"], created["password"]

    status, sent = await _send(session, daemon, channel_id, password=password)
    assert status == 200, sent
    status, listing = await _read(session, daemon, channel_id, password)
    assert status == 200, listing
    assert [m["message_id"] for m in listing["data"]["messages"]] == [sent["data"]["message_id"]]


async def test_changed_password_refuses_the_old_one_on_the_next_request(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    """The daemon remembers verified passwords; the memory must not outlive a change."""
    channel_id, old = await asyncio.to_thread(daemon.create_channel, "passwd")
    for _ in range(2):  # the second one is answered from the verification memory
        status, sent = await _send(session, daemon, channel_id, password=old)
        assert status == 200, sent
    status, listing = await _read(session, daemon, channel_id, old)
    assert status == 200, listing

    new = "a new password for the test"
    changed = await _cli_json(daemon, "channel", "passwd", channel_id, "--password", new)
    assert changed == {"channel_id": channel_id, "password": new}

    status, refused = await _send(session, daemon, channel_id, password=old)
    assert (status, refused["error_code"]) == (403, "password_mismatch"), refused
    status, refused = await _read(session, daemon, channel_id, old)
    assert (status, refused["error_code"]) == (403, "password_mismatch"), refused
    status, sent = await _send(session, daemon, channel_id, password=new)
    assert status == 200, sent
    status, listing = await _read(session, daemon, channel_id, new)
    assert status == 200, listing
    assert len(listing["data"]["messages"]) == 3


async def test_revoked_token_is_refused_on_the_next_request(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    channel_id, _ = await asyncio.to_thread(daemon.create_channel, "revoke")
    created = await _cli_json(
        daemon, "token", "create", "--channel", channel_id, "--scope", "publish"
    )
    token = created["token"]
    status, sent = await _send(session, daemon, channel_id, token=token)
    assert status == 200, sent

    revoked = await _cli_json(daemon, "token", "revoke", created["token_id"])
    assert revoked == {"token_id": created["token_id"], "revoked": True}

    status, refused = await _send(session, daemon, channel_id, token=token)
    assert (status, refused["error_code"]) == (401, "authentication_failed"), refused


async def test_deleted_channel_is_gone_on_the_next_request(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    channel_id, password = await asyncio.to_thread(daemon.create_channel, "delete")
    status, sent = await _send(session, daemon, channel_id, password=password)
    assert status == 200, sent

    await _cli_json(daemon, "channel", "delete", channel_id)

    status, refused = await _send(session, daemon, channel_id, password=password)
    assert (status, refused["error_code"]) == (404, "channel_not_found"), refused
