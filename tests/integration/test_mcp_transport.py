"""/mcp through the ASGI bridge: the MCP SDK's own clients against a real aiohttp server.

Each test builds a small app around `McpEndpoint` (not pushgod's app: authentication is wired
elsewhere); the principal is chosen by an `X-Principal` header so one app can serve two callers.
The last tests drive `AsgiBridge` alone with tiny ASGI apps, for the paths the SDK rarely takes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from aiohttp import ClientPayloadError, ClientResponse, ClientSession, web
from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.session import ClientSession as McpSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from sse_starlette.sse import AppStatus

from pushgod.mcp.endpoint import McpEndpoint
from pushgod.mcp.transport import AsgiApp, AsgiBridge, Message, Receive, Scope, Send

ServerFactory = Callable[..., Awaitable[TestServer]]

PRINCIPALS = {
    name: AccessToken(token=f"token-{name}", client_id=name, scopes=["mcp:tools"])
    for name in ("c1", "c2")
}
ACCEPT = "application/json, text/event-stream"
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
SHUTDOWN_BOUND_S = 10.0  # generous: the point is "not aiohttp's 60 s shutdown timeout"


def make_app(
    *,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    client_max_size: int = 1024**2,
) -> web.Application:
    server = MCPServer("pushgod-test", version="0")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def whoami() -> str:
        """The client id of the caller's access token."""
        token = get_access_token()
        return token.client_id if token is not None else "nobody"

    endpoint = McpEndpoint(server, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)

    async def handle(request: web.Request) -> web.StreamResponse:
        token = PRINCIPALS[request.headers.get("X-Principal", "c1")]
        return await endpoint.handle(request, access_token=token, scopes=token.scopes)

    app = web.Application(client_max_size=client_max_size)
    app.cleanup_ctx.append(endpoint.lifespan)
    app.on_shutdown.append(endpoint.on_shutdown)
    app.router.add_route("*", "/mcp", handle)
    return app


def mcp_url(server: TestServer) -> str:
    return str(server.make_url("/mcp"))


@asynccontextmanager
async def legacy_session(
    url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[McpSession]:
    """A 2025-11-25 session through the SDK's Streamable HTTP client."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        McpSession(read, write) as session,
    ):
        yield session


def text_of(result: Any) -> str:
    assert not result.is_error, result
    return str(result.content[0].text)


async def sse_messages(response: ClientResponse) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a whole SSE body."""
    body = await response.text()
    return [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]


def jsonrpc_headers(session_id: str | None = None, principal: str = "c1") -> dict[str, str]:
    headers = {"Accept": ACCEPT, "Content-Type": "application/json", "X-Principal": principal}
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
        headers["MCP-Protocol-Version"] = LEGACY
    return headers


def request(id_: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}


INITIALIZE = request(
    1,
    "initialize",
    {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
)


async def open_raw_session(http: ClientSession, url: str, principal: str = "c1") -> str:
    """initialize + notifications/initialized over plain HTTP; returns the session id."""
    async with http.post(
        url, json=INITIALIZE, headers=jsonrpc_headers(principal=principal)
    ) as reply:
        assert reply.status == 200, await reply.text()
        assert reply.content_type == "text/event-stream"
        session_id = reply.headers["mcp-session-id"]
        [message] = await sse_messages(reply)
    assert message["result"]["protocolVersion"] == LEGACY
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = jsonrpc_headers(session_id, principal)
    async with http.post(url, json=initialized, headers=headers) as reply:
        assert reply.status == 202, await reply.text()
    return session_id


def check_jsonrpc_error(body: Any, code: int) -> None:
    """A JSON-RPC error with no request id: exactly jsonrpc, id (null) and error."""
    assert set(body) == {"jsonrpc", "id", "error"}, body
    assert body["jsonrpc"] == "2.0" and body["id"] is None, body
    assert body["error"]["code"] == code and body["error"]["message"], body


async def test_legacy_session_lists_and_calls_tools(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app())
    async with legacy_session(mcp_url(server)) as session:
        init = await session.initialize()
        assert init.protocol_version == LEGACY
        tools = await session.list_tools()
        assert {tool.name for tool in tools.tools} == {"echo", "whoami"}
        assert text_of(await session.call_tool("echo", {"text": "hello"})) == "hello"
        assert text_of(await session.call_tool("whoami", {})) == "c1"


async def test_client_auto_mode_speaks_the_2026_revision(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app())
    async with Client(mcp_url(server)) as client:
        assert client.session.protocol_version == MODERN
        assert text_of(await client.call_tool("echo", {"text": "modern"})) == "modern"
        assert text_of(await client.call_tool("whoami", {})) == "c1"


async def test_session_is_bound_to_its_principal(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app())
    url = mcp_url(server)
    async with ClientSession() as http:
        session_id = await open_raw_session(http, url, "c1")
        call = request(2, "tools/call", {"name": "whoami", "arguments": {}})

        async with http.post(url, json=call, headers=jsonrpc_headers(session_id, "c2")) as reply:
            assert reply.status == 404
            check_jsonrpc_error(await reply.json(), -32600)

        async with http.post(url, json=call, headers=jsonrpc_headers(session_id, "c1")) as reply:
            assert reply.status == 200
            [message] = await sse_messages(reply)
        assert message["result"]["content"][0]["text"] == "c1"

        # Another principal cannot end the session either.
        async with http.delete(url, headers=jsonrpc_headers(session_id, "c2")) as reply:
            assert reply.status == 404


async def test_each_principal_sees_its_own_token(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app())
    async with legacy_session(mcp_url(server), {"X-Principal": "c2"}) as session:
        await session.initialize()
        assert text_of(await session.call_tool("whoami", {})) == "c2"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://127.0.0.1:1",  # same host, another port
        "null",
        "https://app.example/path",
    ],
)
async def test_foreign_origin_gets_403(aiohttp_server: ServerFactory, origin: str) -> None:
    server = await aiohttp_server(make_app(allowed_origins=["https://app.example"]))
    async with (
        ClientSession() as http,
        http.post(
            mcp_url(server), json=INITIALIZE, headers={**jsonrpc_headers(), "Origin": origin}
        ) as reply,
    ):
        assert reply.status == 403
        assert reply.content_type == "application/json"
        check_jsonrpc_error(await reply.json(), -32600)


@pytest.mark.parametrize("origin", ["https://App.Example", "https://app.example:443", "same"])
async def test_allowed_or_same_origin_works(aiohttp_server: ServerFactory, origin: str) -> None:
    server = await aiohttp_server(make_app(allowed_origins=["https://app.example"]))
    if origin == "same":
        origin = f"http://{server.host}:{server.port}"
    async with legacy_session(mcp_url(server), {"Origin": origin}) as session:
        await session.initialize()
        assert text_of(await session.call_tool("echo", {"text": "ok"})) == "ok"


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        (["nas.local"], "evil.example", 421),
        (["nas.local"], "NAS.local:8750", 200),  # no port in the entry: any port
        (["nas.local:8750"], "nas.local:8751", 421),
        (["nas.local:8750"], "nas.local:8750", 200),
        (["[::1]"], "[::1]:8750", 200),
        (["nas.local"], "nas.local/@evil.example", 421),  # malformed: never matches
        ([], "anything.example:1", 200),  # an empty list allows any Host
    ],
)
async def test_host_must_be_allowed(
    aiohttp_server: ServerFactory, allowed: list[str], host: str, status: int
) -> None:
    server = await aiohttp_server(make_app(allowed_hosts=allowed))
    async with (
        ClientSession() as http,
        http.post(
            mcp_url(server), json=INITIALIZE, headers={**jsonrpc_headers(), "Host": host}
        ) as reply,
    ):
        assert reply.status == status, await reply.text()
        if status != 200:
            check_jsonrpc_error(await reply.json(), -32600)


def test_malformed_allowlist_entries_are_refused() -> None:
    server = MCPServer("pushgod-test")
    with pytest.raises(ValueError, match="allowed host"):
        McpEndpoint(server, allowed_hosts=["nas.local/x"], allowed_origins=[])
    with pytest.raises(ValueError, match="allowed origin"):
        McpEndpoint(server, allowed_hosts=[], allowed_origins=["nas.local"])


@pytest.mark.parametrize(
    ("body", "version", "code"),
    [
        (b"{not json", None, -32700),
        (b'{"jsonrpc": "2.0", "id": 1}', None, -32602),  # the SDK calls it invalid params
        (b"[]", None, -32602),
        (b"{not json", MODERN, -32700),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]', MODERN, -32600),
    ],
)
async def test_malformed_jsonrpc_gets_a_jsonrpc_error(
    aiohttp_server: ServerFactory, body: bytes, version: str | None, code: int
) -> None:
    server = await aiohttp_server(make_app())
    headers = jsonrpc_headers()
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    async with (
        ClientSession() as http,
        http.post(mcp_url(server), data=body, headers=headers) as reply,
    ):
        assert 400 <= reply.status < 500, await reply.text()
        error = await reply.json()
    assert error["jsonrpc"] == "2.0" and error["id"] is None, error
    assert error["error"]["code"] == code, error


async def test_oversized_body_gets_a_jsonrpc_413(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app(client_max_size=1024))
    call = request(2, "tools/call", {"name": "echo", "arguments": {"text": "x" * 2048}})
    async with (
        ClientSession() as http,
        http.post(mcp_url(server), json=call, headers=jsonrpc_headers()) as reply,
    ):
        assert reply.status == 413
        check_jsonrpc_error(await reply.json(), -32600)


@asynccontextmanager
async def get_stream(http: ClientSession, url: str) -> AsyncIterator[ClientResponse]:
    """A new session's standalone GET SSE stream, its headers received."""
    session_id = await open_raw_session(http, url)
    headers = {
        "Accept": "text/event-stream",
        "Mcp-Session-Id": session_id,
        "MCP-Protocol-Version": LEGACY,
    }
    async with http.get(url, headers=headers) as stream:
        assert stream.status == 200
        assert stream.content_type == "text/event-stream"
        yield stream


async def read_to_end(stream: ClientResponse) -> bytes:
    """Read until the server ends the stream; a cut connection raises."""
    return await stream.content.read()


async def test_shutdown_ends_an_open_get_stream(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app())
    async with ClientSession() as http, get_stream(http, mcp_url(server)) as stream:
        async with asyncio.timeout(SHUTDOWN_BOUND_S):
            await server.close()
            await read_to_end(stream)
    assert AppStatus.should_exit is False  # cleared for the next app in this process


async def test_shutdown_ends_a_2026_listen_stream(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(make_app())
    async with Client(mcp_url(server)) as client, client.listen(tools_list_changed=True) as sub:
        async with asyncio.timeout(SHUTDOWN_BOUND_S):
            closing = asyncio.create_task(server.close())
            events = [event async for event in sub]  # ends when the server closes it
            await closing
        assert events == []


async def test_a_second_app_streams_after_the_first_shut_down(
    aiohttp_server: ServerFactory,
) -> None:
    first = await aiohttp_server(make_app())
    async with ClientSession() as http, get_stream(http, mcp_url(first)) as stream:
        async with asyncio.timeout(SHUTDOWN_BOUND_S):
            await first.close()
            await read_to_end(stream)

    # With the shutdown flag left set, the second app's SSE answers would end before their result.
    second = await aiohttp_server(make_app())
    async with legacy_session(mcp_url(second)) as session:
        await session.initialize()
        assert text_of(await session.call_tool("echo", {"text": "again"})) == "again"


def bridge_app(asgi: AsgiApp) -> web.Application:
    bridge = AsgiBridge(asgi, disconnect_poll_s=0.05)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await bridge(request, {"user": "someone"})

    async def close_bridge(app: web.Application) -> AsyncIterator[None]:
        yield
        await bridge.aclose()

    app = web.Application()
    app.cleanup_ctx.append(close_bridge)
    app.router.add_route("*", "/asgi/{tail:.*}", handle)
    return app


async def test_bridge_scope_body_and_disconnect_after_the_response(
    aiohttp_server: ServerFactory,
) -> None:
    after_response: list[Message] = []

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        request = await receive()
        seen = {
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "user": scope["user"],
            "header": dict(scope["headers"])[b"x-test"].decode(),
            "body": request["body"].decode(),
            "aiohttp": isinstance(scope["aiohttp.request"], web.Request),
        }
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(seen).encode()})
        # The response is complete: receive() answers at once, as under uvicorn.
        after_response.append(await receive())

    app = bridge_app(echo)
    server = await aiohttp_server(app)
    async with (
        ClientSession() as http,
        http.post(
            server.make_url("/asgi/a%20b?q=1"), data=b"payload", headers={"X-Test": "yes"}
        ) as reply,
    ):
        assert reply.status == 201
        seen = json.loads(await reply.read())
    assert seen == {
        "path": "/asgi/a b",
        "raw_path": "/asgi/a%20b",
        "query": "q=1",
        "user": "someone",
        "header": "yes",
        "body": "payload",
        "aiohttp": True,
    }
    assert after_response == [{"type": "http.disconnect"}]


async def test_bridge_app_sees_a_departed_client_and_its_writes_are_dropped(
    aiohttp_server: ServerFactory,
) -> None:
    """aiohttp cancels the handler when the client leaves (TestServer turns handler_cancellation
    on); the app itself must run on, get http.disconnect, and have later writes dropped."""
    finished = asyncio.Event()

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        assert await receive() == {"type": "http.disconnect"}
        await send({"type": "http.response.body", "body": b"dropped", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        finished.set()

    app = bridge_app(stream)
    server = await aiohttp_server(app)
    async with ClientSession() as http:
        reply = await http.get(server.make_url("/asgi/stream"))
        assert await reply.content.readexactly(5) == b"first"
        reply.close()  # drops the connection
    async with asyncio.timeout(SHUTDOWN_BOUND_S):
        await finished.wait()


async def test_bridge_app_failing_mid_response_cuts_the_connection(
    aiohttp_server: ServerFactory,
) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom")

    app = bridge_app(broken)
    server = await aiohttp_server(app)
    async with ClientSession() as http, http.get(server.make_url("/asgi/broken")) as reply:
        assert reply.status == 200
        with pytest.raises(ClientPayloadError):
            await reply.read()


async def test_bridge_app_without_a_response_gets_500(aiohttp_server: ServerFactory) -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    app = bridge_app(silent)
    server = await aiohttp_server(app)
    async with ClientSession() as http, http.get(server.make_url("/asgi/silent")) as reply:
        assert reply.status == 500
