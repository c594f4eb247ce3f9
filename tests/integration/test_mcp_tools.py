"""The MCP tools and resources through the SDK's own client over real HTTP, in both modes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp.test_utils import TestClient
from mcp import Client
from mcp.client.session import ClientSession as McpSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ResourceListChangedNotification, TextResourceContents

from pushgod.mcp.tools import TOOLS
from pushgod.service.auth import Credentials
from pushgod.service.services import Services

from .conftest import OAuthEnv
from .oauth_flow import Flow

GATEWAY_TOKEN = "legacy-gateway-token-0123456789"
PUSHGO_TOOLS = {
    "pushgo.message.send",
    "pushgo.event.create",
    "pushgo.event.update",
    "pushgo.event.close",
    "pushgo.thing.create",
    "pushgo.thing.update",
    "pushgo.thing.archive",
    "pushgo.thing.delete",
    "pushgo.channel.bind.start",
    "pushgo.channel.bind.status",
    "pushgo.channel.list",
    "pushgo.channel.unbind",
}
READ_TOOLS = {
    "pushgo.thing.get",
    "pushgo.thing.list",
    "pushgo.event.get",
    "pushgo.event.list",
    "pushgo.message.list",
}


@asynccontextmanager
async def mcp_session(
    http: TestClient[Any, Any], bearer: str, notes: list[Any] | None = None
) -> AsyncIterator[McpSession]:
    async def on_message(message: Any) -> None:
        if notes is not None:
            notes.append(message)

    url = str(http.make_url("/mcp"))
    headers = {"Authorization": f"Bearer {bearer}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        McpSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return result.structured_content


async def ok(session: McpSession, name: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(name, arguments)
    data = structured(result)
    assert not result.is_error, data
    return data


async def failed(session: McpSession, name: str, **arguments: Any) -> str:
    """The error_code of a call that must fail as a tool error."""
    result = await session.call_tool(name, arguments)
    data = structured(result)
    assert result.is_error, data
    assert set(data) == {"error_code", "error", "status"}
    code: str = data["error_code"]
    return code


@pytest.fixture
async def assistant(flow: Flow, owned: tuple[str, str]) -> str:
    """An access token for the owned channel with both scopes."""
    tokens = await flow.tokens([owned])
    token: str = tokens["access_token"]
    return token


async def test_tools_are_listed_with_strict_schemas(
    http: TestClient[Any, Any], assistant: str
) -> None:
    async with mcp_session(http, assistant) as session:
        listed = (await session.list_tools()).tools
    assert {tool.name for tool in listed} == PUSHGO_TOOLS | READ_TOOLS
    for tool in listed:
        assert tool.input_schema["additionalProperties"] is False
        assert tool.description and tool.annotations is not None
        assert tool.annotations.read_only_hint == (
            tool.name in READ_TOOLS
            or tool.name in {"pushgo.channel.list", "pushgo.channel.bind.status"}
        )
        assert set(tool.input_schema["required"]) <= set(tool.input_schema["properties"])
    send = next(tool for tool in listed if tool.name == "pushgo.message.send")
    assert send.input_schema["required"] == ["channel_id", "title"]
    assert "sealed" not in send.input_schema["properties"]


async def test_oauth_send_event_and_thing_reach_the_store(
    http: TestClient[Any, Any],
    assistant: str,
    owned: tuple[str, str],
    oauth_services: Services,
) -> None:
    channel_id, password = owned
    async with mcp_session(http, assistant) as session:
        sent = await ok(
            session, "pushgo.message.send", channel_id=channel_id, title="Backup done", body="ok"
        )
        assert sent["status"] == 200 and sent["auth_mode"] == "oauth2"
        assert sent["channel_display"] == f"home ({channel_id})"
        message_id = sent["payload"]["data"]["message_id"]

        opened = await ok(
            session,
            "pushgo.event.create",
            channel_id=channel_id,
            title="Deploy",
            status="running",
            message="step 1",
            severity="normal",
        )
        event_id = opened["payload"]["data"]["event_id"]
        for tool, status in (("pushgo.event.update", "halfway"), ("pushgo.event.close", "done")):
            await ok(
                session,
                tool,
                channel_id=channel_id,
                event_id=event_id,
                status=status,
                message=status,
                severity="normal",
            )
        made = await ok(
            session, "pushgo.thing.create", channel_id=channel_id, title="NAS", attrs={"disk": 40}
        )
        thing_id = made["payload"]["data"]["thing_id"]
        await ok(
            session,
            "pushgo.thing.update",
            channel_id=channel_id,
            thing_id=thing_id,
            attrs={"disk": 41},
        )

        thing = await ok(session, "pushgo.thing.get", channel_id=channel_id, thing_id=thing_id)
        assert thing["thing"]["attrs"] == {"disk": 41}
        listed = await ok(session, "pushgo.thing.list", channel_id=channel_id)
        assert [item["thing_id"] for item in listed["things"]] == [thing_id]
        event = await ok(session, "pushgo.event.get", channel_id=channel_id, event_id=event_id)
        assert event["event"]["state"] == "CLOSED"
        assert [update["status"] for update in event["updates"]] == ["running", "halfway", "done"]
        assert (await ok(session, "pushgo.event.list", channel_id=channel_id))["events"] == []
        closed = await ok(session, "pushgo.event.list", channel_id=channel_id, state="closed")
        assert [item["event_id"] for item in closed["events"]] == [event_id]
        messages = await ok(session, "pushgo.message.list", channel_id=channel_id, limit=5)
        assert [item["message_id"] for item in messages["messages"]] == [message_id]

    # The same store, read through the service as the HTTP read API does.
    reader = Credentials(address="test", password=password)
    stored = await oauth_services.messages.recent(
        reader, channel_id, limit=10, before_seq=None, since_ms=None
    )
    assert [item["title"] for item in stored["messages"]] == ["Backup done"]
    stored_thing = await oauth_services.things.get(reader, channel_id, thing_id)
    assert stored_thing["thing"]["attrs"] == {"disk": 41}


async def test_oauth_refuses_passwords_and_unbound_channels(
    http: TestClient[Any, Any],
    assistant: str,
    owned: tuple[str, str],
    oauth_services: Services,
) -> None:
    channel_id, password = owned
    other, _ = await oauth_services.channels.create(None, "other")
    async with mcp_session(http, assistant) as session:
        code = await failed(
            session, "pushgo.message.send", channel_id=channel_id, password=password, title="x"
        )
        assert code == "password_forbidden_in_oauth_mode"
        for tool in ("pushgo.message.send", "pushgo.thing.list", "pushgo.message.list"):
            code = await failed(session, tool, channel_id=other.id, title="x")
            assert code in ("channel_not_bound", "invalid_json_data")
        assert (
            await failed(session, "pushgo.message.send", channel_id=other.id, title="x")
            == "channel_not_bound"
        )
        # An id no channel has answers the same: an assistant cannot probe for channels.
        missing = "0" * 26
        assert await failed(session, "pushgo.thing.list", channel_id=missing) == "channel_not_bound"
    reader = Credentials(address="test", password=password)
    stored = await oauth_services.messages.recent(
        reader, channel_id, limit=10, before_seq=None, since_ms=None
    )
    assert stored["messages"] == []


async def test_tool_errors_carry_the_http_error_codes(
    http: TestClient[Any, Any], assistant: str, owned: tuple[str, str]
) -> None:
    channel_id, _ = owned
    async with mcp_session(http, assistant) as session:
        send = "pushgo.message.send"
        assert await failed(session, send, channel_id=channel_id) == "title_required"
        assert await failed(session, send, channel_id=channel_id, title=5) == "invalid_json_data"
        assert (
            await failed(session, send, channel_id=channel_id, title="x", colour="red")
            == "invalid_json_data"
        )
        assert await failed(session, send, title="x") == "channel_id_required"
        assert await failed(session, send, channel_id="nope", title="x") == "invalid_channel_id"
        assert (
            await failed(session, "pushgo.thing.get", channel_id=channel_id, thing_id="absent")
            == "thing_not_found"
        )
        assert (
            await failed(
                session,
                "pushgo.event.update",
                channel_id=channel_id,
                event_id="absent",
                status="s",
                message="m",
                severity="normal",
            )
            == "event_not_found"
        )
        assert (
            await failed(session, "pushgo.thing.list", channel_id=channel_id, limit=0)
            == "invalid_field"
        )
        assert (
            await failed(session, "pushgo.event.list", channel_id=channel_id, state="open")
            == "invalid_query"
        )
        for huge in (2**63, 10**30):  # beyond SQLite's integers: was a 500
            code = await failed(
                session, "pushgo.message.list", channel_id=channel_id, before_seq=huge
            )
            assert code == "invalid_field"
        with pytest.raises(MCPError) as unknown:
            await session.call_tool("pushgo.message.shout", {})
        assert "Unknown tool" in unknown.value.message


async def test_scopes_are_checked_per_call(
    flow: Flow, owned: tuple[str, str], http: TestClient[Any, Any]
) -> None:
    tokens = await flow.tokens_with(owned, scope="mcp:tools")
    async with mcp_session(http, tokens["access_token"]) as session:
        await ok(session, "pushgo.message.send", channel_id=owned[0], title="allowed")
        with pytest.raises(Exception):  # noqa: B017 - the SDK client raises on a 403
            await session.call_tool("pushgo.channel.list", {})
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "pushgo_channel_list", "arguments": {}},
    }
    headers = {
        "Authorization": f"Bearer {tokens['access_token']}",
        "Accept": "application/json, text/event-stream",
    }
    manager = await flow.tokens_with(owned, scope="mcp:channels:manage")
    manager_headers = {**headers, "Authorization": f"Bearer {manager['access_token']}"}
    async with mcp_session(http, manager["access_token"]) as session:
        listing = await session.read_resource("pushgo://channels")
        assert owned[0] in listing.contents[0].text  # type: ignore[union-attr]
    read = {"jsonrpc": "2.0", "id": 2, "method": "resources/read"}
    # A channel's content needs mcp:tools too: asked for over HTTP, as a challenge.
    for uri in (f"pushgo://channels/{owned[0]}", f"pushgo://things/{owned[0]}/t1"):
        response = await http.post(
            "/mcp", json={**read, "params": {"uri": uri}}, headers=manager_headers
        )
        assert response.status == 403
        assert 'scope="mcp:tools"' in response.headers["WWW-Authenticate"]
    for body in (call, {**call, "method": "resources/list", "params": {}}):
        response = await http.post("/mcp", json=body, headers=headers)
        assert response.status == 403
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="insufficient_scope"')
        assert 'scope="mcp:channels:manage"' in challenge
        assert "resource_metadata=" in challenge


async def test_channel_tools_bind_list_and_unbind(
    http: TestClient[Any, Any],
    assistant: str,
    owned: tuple[str, str],
    oauth_services: Services,
) -> None:
    channel_id, _ = owned
    second, second_password = await oauth_services.channels.create(None, "garage")
    notes: list[Any] = []
    async with mcp_session(http, assistant, notes) as session:
        listed = await ok(session, "pushgo.channel.list")
        assert [item["channel_id"] for item in listed["channels"]] == [channel_id]
        started = await ok(session, "pushgo.channel.bind.start", requested_channel_id=second.id)
        assert started["bind_url"].endswith(f"bind_session_id={started['bind_session_id']}")
        session_id = started["bind_session_id"]
        status = await ok(session, "pushgo.channel.bind.status", bind_session_id=session_id)
        assert status["status"] == "pending" and status["resources_changed"] is False
        assert await failed(session, "pushgo.message.send", channel_id=second.id, title="x") == (
            "channel_not_bound"
        )

        # What the bind page does when the user enters the password.
        await oauth_services.bindings.complete(session_id, second.id, second_password, "test")
        status = await ok(session, "pushgo.channel.bind.status", bind_session_id=session_id)
        assert status["status"] == "completed" and status["resources_changed"] is True
        assert status["channel_display"] == f"garage ({second.id})"
        assert any(isinstance(note, ResourceListChangedNotification) for note in notes), notes
        status = await ok(session, "pushgo.channel.bind.status", bind_session_id=session_id)
        assert status["resources_changed"] is False

        await ok(session, "pushgo.message.send", channel_id=second.id, title="now allowed")
        listed = await ok(session, "pushgo.channel.list")
        assert {item["channel_id"] for item in listed["channels"]} == {channel_id, second.id}

        removed = await ok(session, "pushgo.channel.unbind", channel_id=second.id)
        assert removed["removed"] is True and removed["resources_changed"] is True
        again = await ok(session, "pushgo.channel.unbind", channel_id=second.id)
        assert again["removed"] is False and again["channel_name"] is None
        assert await failed(session, "pushgo.message.send", channel_id=second.id, title="x") == (
            "channel_not_bound"
        )
        code = await failed(session, "pushgo.channel.bind.status", bind_session_id="pgdb_nope")
        assert code == "bind_session_not_found"
        code = await failed(session, "pushgo.channel.bind.start", redirect_uri="https://evil.test/")
        assert code == "invalid_redirect_uri"


async def test_resources_show_bound_channels_and_things(
    http: TestClient[Any, Any],
    assistant: str,
    owned: tuple[str, str],
    oauth_services: Services,
) -> None:
    channel_id, _ = owned
    other, _ = await oauth_services.channels.create(None, "other")
    async with mcp_session(http, assistant) as session:
        await ok(session, "pushgo.message.send", channel_id=channel_id, title="hello")
        made = await ok(
            session, "pushgo.thing.create", channel_id=channel_id, title="Pump", attrs={"on": True}
        )
        thing_id = made["payload"]["data"]["thing_id"]

        resources = (await session.list_resources()).resources
        assert [str(item.uri) for item in resources] == [
            "pushgo://channels",
            f"pushgo://channels/{channel_id}",
        ]
        templates = (await session.list_resource_templates()).resource_templates
        assert {item.uri_template for item in templates} == {
            "pushgo://channels/{channel_id}",
            "pushgo://things/{channel_id}/{thing_id}",
        }

        async def read(uri: str) -> dict[str, Any]:
            contents = (await session.read_resource(uri)).contents
            assert isinstance(contents[0], TextResourceContents)
            data: dict[str, Any] = json.loads(contents[0].text)
            return data

        channels = await read("pushgo://channels")
        assert [item["channel_id"] for item in channels["channels"]] == [channel_id]
        channel = await read(f"pushgo://channels/{channel_id}")
        assert channel["channel_name"] == "home" and channel["status"] == "active"
        assert channel["counts"]["messages"] == 1
        assert [item["title"] for item in channel["recent"]["messages"]] == ["hello"]
        assert [item["thing_id"] for item in channel["recent"]["things"]] == [thing_id]
        thing = await read(f"pushgo://things/{channel_id}/{thing_id}")
        assert thing["thing"]["attrs"] == {"on": True}

        for uri in (
            f"pushgo://channels/{other.id}",
            f"pushgo://things/{other.id}/{thing_id}",
            f"pushgo://things/{channel_id}/absent",
            "pushgo://channels/not-an-id",
            "pushgo://elsewhere",
        ):
            with pytest.raises(MCPError) as error:
                await session.read_resource(uri)
            assert error.value.code == -32002, uri


@pytest.mark.parametrize("oauth_env", [{"PUSHGO_TOKEN": GATEWAY_TOKEN}])
async def test_legacy_mode_needs_the_password(
    http: TestClient[Any, Any], owned: tuple[str, str], oauth_env: OAuthEnv
) -> None:
    channel_id, password = owned
    async with mcp_session(http, GATEWAY_TOKEN) as session:
        sent = await ok(
            session, "pushgo.message.send", channel_id=channel_id, password=password, title="hi"
        )
        assert sent["auth_mode"] == "legacy"
        assert (
            await failed(session, "pushgo.message.send", channel_id=channel_id, title="hi")
            == "password_required_in_legacy_mode"
        )
        assert (
            await failed(
                session,
                "pushgo.message.send",
                channel_id=channel_id,
                password="wrong password",
                title="hi",
            )
            == "password_mismatch"
        )
        # Read tools take the password as send tools do: trimmed.
        listed = await ok(
            session, "pushgo.message.list", channel_id=channel_id, password=f" {password} "
        )
        assert [item["title"] for item in listed["messages"]] == ["hi"]
        assert await failed(session, "pushgo.channel.list") == "auth_mode_not_supported"
        with pytest.raises(MCPError):
            await session.list_resources()
    # Any other bearer is still refused.
    response = await http.post(
        "/mcp", json={}, headers={"Authorization": "Bearer not-the-gateway-token"}
    )
    assert response.status == 401


@pytest.mark.parametrize("oauth_env", [{"PUSHGOD_MCP_UNDERSCORED_TOOL_NAMES": "true"}])
async def test_underscored_names_are_listed_and_both_names_work(
    http: TestClient[Any, Any], assistant: str, owned: tuple[str, str], oauth_env: OAuthEnv
) -> None:
    async with mcp_session(http, assistant) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert names == {tool.name.replace(".", "_") for tool in TOOLS}
        await ok(session, "pushgo_message_send", channel_id=owned[0], title="underscored")
        await ok(session, "pushgo.message.send", channel_id=owned[0], title="dotted")


async def test_the_2026_revision_client_calls_tools(
    http: TestClient[Any, Any], assistant: str, owned: tuple[str, str]
) -> None:
    url = str(http.make_url("/mcp"))
    headers = {"Authorization": f"Bearer {assistant}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as client,
        Client(streamable_http_client(url, http_client=client)) as mcp,
    ):
        assert mcp.session.protocol_version == "2026-07-28"
        result = await mcp.call_tool(
            "pushgo.message.send", {"channel_id": owned[0], "title": "modern"}
        )
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["payload"]["success"] is True


INSPECTOR = "http://localhost:6274"


@pytest.mark.parametrize("oauth_env", [{"PUSHGOD_MCP_ALLOWED_ORIGINS": INSPECTOR}])
async def test_browser_clients_of_allowed_origins_get_cors(
    http: TestClient[Any, Any], assistant: str, oauth_env: OAuthEnv
) -> None:
    preflight = await http.options(
        "/mcp",
        headers={
            "Origin": INSPECTOR,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == INSPECTOR
    assert "Mcp-Session-Id" in preflight.headers["Access-Control-Allow-Headers"]

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "inspector", "version": "1"},
        },
    }
    headers = {"Origin": INSPECTOR, "Accept": "application/json, text/event-stream"}
    unauthenticated = await http.post("/mcp", json=initialize, headers=headers)
    assert unauthenticated.status == 401
    assert unauthenticated.headers["Access-Control-Allow-Origin"] == INSPECTOR
    assert "WWW-Authenticate" in unauthenticated.headers["Access-Control-Expose-Headers"]
    headers["Authorization"] = f"Bearer {assistant}"
    opened = await http.post("/mcp", json=initialize, headers=headers)
    assert opened.status == 200
    assert opened.headers["Access-Control-Allow-Origin"] == INSPECTOR
    assert "Mcp-Session-Id" in opened.headers["Access-Control-Expose-Headers"]

    foreign = await http.options(
        "/mcp", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert foreign.status == 403
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_the_sdk_loads_with_the_first_mcp_request_only(tmp_path: Path) -> None:
    """Start-up on a Raspberry Pi: the app with MCP enabled has not imported the MCP SDK."""
    program = f"""
import sys
from pushgod.config import load_settings
from pushgod.http.app import create_app
from pushgod.service.services import Services
settings = load_settings(environ={{
    "PUSHGOD_STORAGE_DATA_DIR": {str(tmp_path / "data")!r}, "PUSHGOD_MCP_ENABLED": "true"}})
app = create_app(settings, Services(settings))
assert any(route.resource.canonical == "/mcp" for route in app.router.routes())
print(sorted(name for name in sys.modules if name == "mcp" or name.startswith("mcp.")))
"""
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "[]", run.stdout


async def test_the_first_requests_share_one_load(
    http: TestClient[Any, Any], assistant: str, owned: tuple[str, str]
) -> None:
    """Many sessions opened at once while the SDK loads all get the same endpoint."""

    async def send(number: int) -> dict[str, Any]:
        async with mcp_session(http, assistant) as session:
            return await ok(
                session, "pushgo.message.send", channel_id=owned[0], title=f"at once {number}"
            )

    results = await asyncio.gather(*(send(number) for number in range(5)))
    assert {result["status"] for result in results} == {200}
