"""Credentials revoked by the CLI, another process, end the daemon's open streams at once.

The daemon learns of another process's commits from SQLite's data_version (checked about
once a second by its writer), then checks every open stream's credentials again: a
stream whose token or client is gone ends with {"type": "closed", "reason": "revoked"}.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nacl.public
import pytest

from pushgod.model import sealing

from .harness import Daemon, basic_auth

GUARD_S = 20.0
"""How long the stream may take to end: a failure guard, never a wait."""


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as opened:
        yield opened


async def _cli_json(daemon: Daemon, *args: str) -> dict[str, Any]:
    return await asyncio.to_thread(daemon.cli_json, *args)


async def _next_line(reply: aiohttp.ClientResponse) -> dict[str, Any]:
    """The stream's next NDJSON line other than a keepalive; fails if the stream ends."""
    while True:
        line = await asyncio.wait_for(reply.content.readline(), GUARD_S)
        assert line, "the stream ended without a closing line"
        item: dict[str, Any] = json.loads(line)
        if item["type"] != "keepalive":
            return item


async def _send(
    session: aiohttp.ClientSession, daemon: Daemon, channel_id: str, password: str
) -> str:
    body = {"channel_id": channel_id, "password": password, "title": "live"}
    async with session.post(f"{daemon.url}/message", json=body) as reply:
        envelope: dict[str, Any] = await reply.json()
    assert reply.status == 200, envelope
    message_id: str = envelope["data"]["message_id"]
    return message_id


async def _pair(session: aiohttp.ClientSession, daemon: Daemon, channel_id: str) -> dict[str, Any]:
    """A pairing code from `pushgod client pair`, redeemed over HTTP like a phone does."""
    pairing = await _cli_json(daemon, "client", "pair", "--channel", channel_id)
    assert pairing["channel_id"] == channel_id
    public_key = bytes(nacl.public.PrivateKey.generate().public_key)
    body = {"code": pairing["code"], "public_key": sealing.b64encode(public_key), "name": "phone"}
    async with session.post(f"{daemon.url}/api/v1/pair", json=body) as reply:
        envelope: dict[str, Any] = await reply.json()
    assert reply.status == 200, envelope
    data: dict[str, Any] = envelope["data"]
    assert data["channel_id"] == channel_id and data["scopes"] == ["subscribe"]
    return data


async def _stream_ends_as_revoked(
    session: aiohttp.ClientSession,
    daemon: Daemon,
    channel: tuple[str, str],
    headers: dict[str, str],
    *revoke: str,
) -> int:
    """Open a live NDJSON stream with `headers`, see it deliver, run `pushgod REVOKE...`
    as its own process, and check the stream ends as revoked; the refusal's status after."""
    channel_id, password = channel
    url = f"{daemon.url}/api/v1/channels/{channel_id}/json"
    async with session.get(url, headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        sent = await _send(session, daemon, channel_id, password)
        item = await _next_line(reply)
        assert item["type"] == "message" and item["message"]["message_id"] == sent, item

        done = await asyncio.to_thread(daemon.cli, *revoke, "--json")
        assert done.returncode == 0, done.stderr

        closing = await _next_line(reply)
        assert closing == {"type": "closed", "reason": "revoked", "resume_after": item["seq"]}
        assert await asyncio.wait_for(reply.content.read(), GUARD_S) == b""
    async with session.get(url, headers=headers) as refused:
        envelope: dict[str, Any] = await refused.json()
    assert envelope["success"] is False, envelope
    return refused.status


async def test_client_revoked_by_the_cli_ends_its_stream(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    channel = await asyncio.to_thread(daemon.create_channel, "revoke client")
    paired = await _pair(session, daemon, channel[0])
    headers = {"Authorization": f"Bearer {paired['token']}"}
    status = await _stream_ends_as_revoked(
        session, daemon, channel, headers, "client", "revoke", paired["client_id"]
    )
    assert status == 401
    listed = await _cli_json(daemon, "client", "list", "--channel", channel[0])
    assert listed == {"clients": []}


async def test_token_revoked_by_the_cli_ends_its_stream(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    channel = await asyncio.to_thread(daemon.create_channel, "revoke token")
    created = await _cli_json(
        daemon, "token", "create", "--channel", channel[0], "--scope", "subscribe"
    )
    headers = {"Authorization": f"Bearer {created['token']}"}
    status = await _stream_ends_as_revoked(
        session, daemon, channel, headers, "token", "revoke", created["token_id"]
    )
    assert status == 401


async def test_password_changed_by_the_cli_ends_streams_opened_with_the_old_one(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    channel = await asyncio.to_thread(daemon.create_channel, "passwd")
    status = await _stream_ends_as_revoked(
        session,
        daemon,
        channel,
        basic_auth(*channel),
        "channel",
        "passwd",
        channel[0],
        "--password",
        "a new password for the test",
    )
    assert status == 403


async def test_other_streams_stay_open_when_the_cli_revokes_one_client(
    daemon: Daemon, session: aiohttp.ClientSession
) -> None:
    channel_id, password = await asyncio.to_thread(daemon.create_channel, "bystanders")
    gone = await _pair(session, daemon, channel_id)
    kept = await _pair(session, daemon, channel_id)
    url = f"{daemon.url}/api/v1/channels/{channel_id}/json"
    async with (
        session.get(url, headers={"Authorization": f"Bearer {gone['token']}"}) as gone_reply,
        session.get(url, headers={"Authorization": f"Bearer {kept['token']}"}) as kept_reply,
    ):
        assert (gone_reply.status, kept_reply.status) == (200, 200)
        await _cli_json(daemon, "client", "revoke", gone["client_id"])
        closing = await _next_line(gone_reply)
        assert (closing["type"], closing["reason"]) == ("closed", "revoked")
        sent = await _send(session, daemon, channel_id, password)
        item = await _next_line(kept_reply)
        assert item["type"] == "message" and item["message"]["message_id"] == sent, item
