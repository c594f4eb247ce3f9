"""The quick start's promise: a PushGo message is accepted and shows up in the read API."""

from __future__ import annotations

from typing import Any

from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient


async def test_message_round_trip(client: TestClient[Any, Any], channel: tuple[str, str]) -> None:
    channel_id, password = channel
    reply = await client.post(
        "/message", json={"channel_id": channel_id, "password": password, "title": "hi"}
    )
    assert reply.status == 200
    sent = await reply.json()
    assert sent["success"] is True
    read = await client.get(
        f"/api/v1/channels/{channel_id}/messages",
        headers={"Authorization": encode_basic_auth(channel_id, password)},
    )
    listing = await read.json()
    assert [m["message_id"] for m in listing["data"]["messages"]] == [sent["data"]["message_id"]]
