"""/mcp's direct path (mcp/direct.py): a tool call in a session, answered without the SDK's
transport and exactly as the SDK answers it.

Which path answered shows on the wire: the SDK streams its SSE answer chunked, the direct path
sends the same event whole, with a Content-Length. The direct path takes a request only with the
session's own `MCP-Protocol-Version`, so the same call without that header gets the SDK's answer
to compare with.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession as McpSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ResourceListChangedNotification
from multidict import CIMultiDictProxy

from pushgod.service.services import Services

from .oauth_flow import Flow
from .test_mcp_bad_input import (
    CALL_TIMEOUT_S,
    LEGACY,
    LEGACY_ENV,
    SEND,
    Http,
    Raw,
    Store,
    rpc,
    store,
    tools_call,
    without,
)
from .test_mcp_tools import GATEWAY_TOKEN, assistant, structured

__all__ = ["assistant", "store"]  # fixtures, imported for the tests below

DIRECT, SDK = "direct", "sdk"


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def path(self) -> str:
        """Which path gave this SSE answer: the SDK streams it chunked, the direct one not."""
        assert self.headers["Content-Type"] == "text/event-stream", (self.status, self.body)
        return SDK if self.headers.get("Transfer-Encoding") == "chunked" else DIRECT

    def message(self) -> dict[str, Any]:
        """The one JSON-RPC message of an SSE answer."""
        assert self.headers["Content-Type"] == "text/event-stream", (self.status, self.body)
        [data] = [line[5:] for line in self.body.decode().split("\r\n") if line.startswith("data:")]
        message: dict[str, Any] = json.loads(data)
        return message


async def post(session: Raw, body: dict[str, Any], via: str = DIRECT) -> Answer:
    """POST `body` in `session`; `via=SDK` leaves out the header the direct path requires."""
    changes = {"MCP-Protocol-Version": "-"} if via == SDK else {}
    async with asyncio.timeout(CALL_TIMEOUT_S):
        response = await session.http.post(
            "/mcp",
            data=json.dumps(body).encode(),
            headers=session.headers(changes),
            skip_auto_headers=["Accept", "Content-Type"],
        )
        return Answer(response.status, response.headers, await response.read())


async def both(session: Raw, body: dict[str, Any]) -> tuple[Answer, Answer]:
    """The SDK's answer to `body`, then the one `body` gets when the direct path may take it."""
    return await post(session, body, SDK), await post(session, body, DIRECT)


@asynccontextmanager
async def sdk_client(
    http: Http, bearer: str, notes: list[Any] | None = None
) -> AsyncIterator[tuple[McpSession, list[str]]]:
    """The SDK's client in a new session, with the path of each of its tool calls' answers."""
    paths: list[str] = []

    async def note_path(response: httpx2.Response) -> None:
        request = response.request
        if request.method == "POST" and json.loads(request.content)["method"] == "tools/call":
            chunked = response.headers.get("transfer-encoding") == "chunked"
            paths.append(SDK if chunked else DIRECT)

    async def on_message(message: Any) -> None:
        if notes is not None:
            notes.append(message)

    url, headers = str(http.make_url("/mcp")), {"Authorization": f"Bearer {bearer}"}
    async with (
        httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(30.0),
            event_hooks={"response": [note_path]},
        ) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        McpSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session, paths


async def opened(http: Http, bearer: str, *, initialized: bool = True) -> Raw:
    """A new session of `bearer` (`initialize` accepted, then `notifications/initialized`)."""
    client = {"name": "direct", "version": "1"}
    init = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": client}
    raw = Raw(http, bearer)
    async with asyncio.timeout(CALL_TIMEOUT_S):
        reply = await http.post("/mcp", json=rpc("initialize", init), headers=raw.headers({}))
        assert reply.status == 200, await reply.text()
        assert "result" in json.loads((await reply.text()).split("data: ", 1)[1])
    session = Raw(http, bearer, reply.headers["mcp-session-id"])
    if initialized:
        note = await session.send(without(rpc("notifications/initialized"), "id"))
        assert note.status == 202, note.text
    return session


def bearer_of(mode: str, assistant: str) -> str:
    return GATEWAY_TOKEN if mode == "legacy" else assistant


@pytest.mark.parametrize("oauth_env", LEGACY_ENV)
@pytest.mark.parametrize("mode", ["oauth", "legacy"])
async def test_the_direct_answer_is_the_sdks(
    http: Http, assistant: str, store: Store, mode: str
) -> None:
    channel_id, password = store.channel
    session = await opened(http, bearer_of(mode, assistant))
    secret = {"password": password} if mode == "legacy" else {}
    send = {"channel_id": channel_id, "title": "once", "op_id": "direct-1"} | secret

    # A send: the second call repeats the op_id, so it answers with the first one's reply.
    sdk, direct = await both(session, tools_call(SEND, send))
    assert (sdk.path, direct.path) == (SDK, DIRECT)
    assert (sdk.status, sdk.body) == (direct.status, direct.body)
    assert sdk.message()["result"]["structuredContent"]["payload"]["success"] is True
    assert await store.titles() == ["once"]

    # A read, then tool errors: a bad argument, and a password in the wrong mode.
    wrong = {"password": "x" * 12} if mode == "oauth" else {}
    calls = [
        tools_call("pushgo.thing.list", {"channel_id": channel_id} | secret),
        tools_call(SEND, send | {"title": 5}),
        tools_call(SEND, {"channel_id": channel_id, "title": "t"} | wrong),
    ]
    for call in calls:
        sdk, direct = await both(session, call)
        assert (sdk.path, direct.path) == (SDK, DIRECT), call
        assert (sdk.status, sdk.headers["Content-Type"], sdk.body) == (
            direct.status,
            direct.headers["Content-Type"],
            direct.body,
        ), call
    assert direct.message()["result"]["isError"] is True
    assert set(direct.message()["result"]["structuredContent"]) == {"error_code", "error", "status"}

    # Params the SDK refuses are left to it: the same JSON-RPC error either way.
    for params in ({"name": SEND, "arguments": [["title", "t"]]}, {"name": SEND, "arguments": 5}):
        sdk, direct = await both(session, rpc("tools/call", params))
        assert (sdk.path, direct.path) == (SDK, SDK), params
        assert sdk.body == direct.body and sdk.message()["error"]["code"] == -32602, params
    assert await store.titles() == ["once"]  # nothing but the first send was stored


@pytest.mark.parametrize("oauth_env", LEGACY_ENV)
@pytest.mark.parametrize(
    ("owner", "intruder"),
    [("assistant", "same client, another grant"), ("assistant", "gateway token"),
     ("gateway token", "assistant")],
)  # fmt: skip
async def test_another_principals_session_is_not_found_on_the_direct_path(
    http: Http, flow: Flow, assistant: str, store: Store, owner: str, intruder: str
) -> None:
    channel_id, password = store.channel
    bearers = {
        "assistant": assistant,
        "same client, another grant": (await flow.tokens([store.channel]))["access_token"],
        "gateway token": GATEWAY_TOKEN,
    }
    await store.mark()
    mine = await opened(http, bearers[owner])
    theirs = Raw(http, bearers[intruder], mine.session_id)
    unknown = Raw(http, bearers[intruder], "f" * 32)

    secret = {"password": password} if "gateway" in intruder else {}
    call = tools_call(SEND, {"channel_id": channel_id, "title": "stolen"} | secret)
    stolen, nowhere = await post(theirs, call), await post(unknown, call)
    assert stolen.status == 404, stolen.body
    assert (stolen.headers["Content-Type"], stolen.body) == (
        nowhere.headers["Content-Type"],
        nowhere.body,
    )
    await store.unchanged()

    # The owner's direct calls still work in it.
    listing = {"channel_id": channel_id} | ({"password": password} if "gateway" in owner else {})
    reply = await post(mine, tools_call("pushgo.message.list", listing))
    assert (reply.status, reply.path) == (200, DIRECT)
    assert reply.message()["result"]["structuredContent"]["messages"] == []


async def test_a_session_goes_direct_once_the_sdk_saw_it_initialized(
    http: Http, assistant: str, store: Store
) -> None:
    """Until one of its messages reached the SDK's server after `initialize`, a session's calls
    go to the SDK, which knows whether the handshake succeeded."""
    session, fresh = await opened(http, assistant), await opened(http, assistant, initialized=False)
    call = tools_call("pushgo.thing.list", {"channel_id": store.channel[0]})
    first, second = await post(fresh, call), await post(fresh, call)
    assert (first.path, second.path) == (SDK, DIRECT)
    assert first.body == second.body == (await post(session, call)).body


async def test_channel_tools_still_go_through_the_sdk(
    http: Http, assistant: str, store: Store, oauth_services: Services
) -> None:
    """The channel tools may tell the client that its resources changed, on the call's own
    stream: the SDK answers them. What they change shows on the very next direct call."""
    channel_id = store.channel[0]
    session = await opened(http, assistant)
    listed = await post(session, tools_call("pushgo.channel.list", {}))
    assert (listed.status, listed.path) == (200, SDK)
    [bound] = listed.message()["result"]["structuredContent"]["channels"]
    assert bound["channel_id"] == channel_id

    notes: list[Any] = []
    async with sdk_client(http, assistant, notes) as (client, _):
        unbound = await client.call_tool("pushgo.channel.unbind", {"channel_id": channel_id})
        assert structured(unbound)["removed"] is True
    assert any(isinstance(note, ResourceListChangedNotification) for note in notes), notes

    refused = await post(session, tools_call(SEND, {"channel_id": channel_id, "title": "t"}))
    assert refused.path == DIRECT
    assert refused.message()["result"]["structuredContent"]["error_code"] == "channel_not_bound"

    [grant] = oauth_services.oauth.grants(None)
    await oauth_services.oauth.revoke_grant(None, grant.grant.id)
    revoked = await post(session, tools_call("pushgo.thing.list", {"channel_id": channel_id}))
    assert revoked.status == 401
    await store.unchanged()


async def test_a_direct_answer_means_the_message_is_committed(
    http: Http, assistant: str, store: Store, oauth_services: Services
) -> None:
    channel_id = store.channel[0]
    async with sdk_client(http, assistant) as (client, paths):
        result = await client.call_tool(SEND, {"channel_id": channel_id, "title": "durable"})
        message_id = structured(result)["payload"]["data"]["message_id"]
        # Read at once, without waiting for the writer: the answer came after the commit.
        stored = oauth_services.store.tables.execute(
            "SELECT count(*) FROM messages WHERE id = ?", (message_id,)
        ).fetchone()[0]
        assert stored == 1
        assert paths == [DIRECT], paths
    assert await store.titles() == ["durable"]
