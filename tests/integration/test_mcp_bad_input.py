"""Bad input to /mcp on pushgod's real app: a JSON-RPC or tool error, never a 500 or a hang,
and nothing stored.

The SDK's client sends what it can (unknown tools, wrong types, missing and extra fields); raw
aiohttp requests send what it cannot (malformed JSON-RPC, oversized bodies, strings that are not
Unicode, another principal's session). Transport cases on a toy server: test_mcp_transport.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from aiohttp.test_utils import TestClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

from pushgod.http.requests import MAX_BODY
from pushgod.mcp.endpoint import MAX_SESSIONS
from pushgod.mcp.tools import TOOLS
from pushgod.model.errors import STATUS, ErrorCode
from pushgod.service.auth import Credentials
from pushgod.service.services import Services

from .oauth_flow import Flow
from .support import barrier, counts
from .test_mcp_tools import GATEWAY_TOKEN, assistant, mcp_session, structured

__all__ = ["assistant"]  # a fixture, imported for the tests below

CALL_TIMEOUT_S = 10.0
JSON, ACCEPT = "application/json", "application/json, text/event-stream"
LEGACY, MODERN = "2025-11-25", "2026-07-28"  # with a handshake and session; without
SEND = "pushgo.message.send"
LEGACY_ENV = [{"PUSHGO_TOKEN": GATEWAY_TOKEN}]
CLIENT_LOGGERS = ("mcp.client", "httpx2", "httpcore2")  # this test's own client, not pushgod

Http = TestClient[Any, Any]
Call = Callable[[str, dict[str, Any]], Awaitable[CallToolResult]]

# -- helpers -----------------------------------------------------------------------------


@dataclass
class Store:
    """The owned channel's store: `mark()` it, then every bad call must leave it `unchanged()`."""

    services: Services
    channel: tuple[str, str]
    before: dict[str, int] = field(default_factory=dict)

    async def mark(self) -> Store:
        await barrier(self.services)
        self.before = counts(self.services)
        return self

    async def unchanged(self, case: object = "") -> None:
        await barrier(self.services)
        assert counts(self.services) == self.before, case
        assert await self.titles() == [], case

    async def titles(self) -> list[str]:
        channel_id, password = self.channel
        reader = Credentials(address="test", password=password)
        recent = self.services.messages.recent
        stored = await recent(reader, channel_id, limit=10, before_seq=None, since_ms=None)
        return [message["title"] for message in stored["messages"]]


@pytest.fixture
async def store(oauth_services: Services, owned: tuple[str, str], assistant: str) -> Store:
    """The owned channel's store, marked once the assistant's grant exists."""
    return await Store(oauth_services, owned).mark()


@asynccontextmanager
async def tool_caller(http: Http, bearer: str, era: str) -> AsyncIterator[Call]:
    """`call(name, arguments)` through the SDK's client, in a handshake or a 2026 session."""
    if era == LEGACY:
        async with mcp_session(http, bearer) as session:
            yield session.call_tool
        return
    headers, url = {"Authorization": f"Bearer {bearer}"}, str(http.make_url("/mcp"))
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as client,
        Client(streamable_http_client(url, http_client=client)) as modern,
    ):
        assert modern.session.protocol_version == MODERN
        yield modern.call_tool


async def tool_error(call: Call, name: str, arguments: dict[str, Any]) -> tuple[str, int]:
    """(error_code, status) of a call that must fail as a tool error."""
    async with asyncio.timeout(CALL_TIMEOUT_S):
        result = await call(name, arguments)
    data = structured(result)
    assert result.is_error, (name, arguments, data)
    assert set(data) == {"error_code", "error", "status"}, data
    return data["error_code"], data["status"]


def rpc(method: str, params: Any = None, id_: int = 7) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}


def tools_call(name: Any, arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": arguments})


def without(message: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in message.items() if name != key}


@dataclass
class Reply:
    status: int
    content_type: str
    messages: list[Any]  # the JSON body, or the data of each SSE event
    text: str

    def code(self) -> int | None:
        """The JSON-RPC error code of a reply that is one JSON-RPC error, else None."""
        message = self.messages[0] if len(self.messages) == 1 else {}
        error = message.get("error") if message.get("jsonrpc") == "2.0" else None
        return error.get("code") if isinstance(error, dict) else None

    def error(self) -> dict[str, Any]:
        """The one JSON-RPC error this reply carries, its shape checked."""
        assert isinstance(self.code(), int), (self.status, self.text)
        message = self.messages[0]
        assert set(message) == {"jsonrpc", "id", "error"} and message["error"]["message"], message
        error: dict[str, Any] = message["error"]
        return error

    def result(self) -> dict[str, Any]:
        """The structured content of a tool call's successful result."""
        assert self.status == 200, self.text
        [message] = self.messages
        assert message["result"]["isError"] is False, message
        content: dict[str, Any] = message["result"]["structuredContent"]
        return content


@dataclass
class Raw:
    """Plain HTTP to /mcp with one bearer, inside a handshake session once `open()`ed."""

    http: Http
    bearer: str
    session_id: str | None = None

    def headers(self, changes: dict[str, str]) -> dict[str, str]:
        """The headers of a good request, changed by `changes` ("-" drops one)."""
        headers = {"Authorization": f"Bearer {self.bearer}", "Accept": ACCEPT, "Content-Type": JSON}
        if self.session_id is not None:
            headers |= {"Mcp-Session-Id": self.session_id, "MCP-Protocol-Version": LEGACY}
        return {name: value for name, value in (headers | changes).items() if value != "-"}

    async def send(
        self, body: Any, method: str = "POST", headers: dict[str, str] | None = None
    ) -> Reply:
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        async with asyncio.timeout(CALL_TIMEOUT_S):
            headers = self.headers(headers or {})
            skip = ["Accept", "Content-Type"]  # send only the ones `headers` has
            response = await self.http.request(
                method, "/mcp", data=data, headers=headers, skip_auto_headers=skip
            )
            text = await response.text()
        if response.content_type == "text/event-stream":
            events = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        else:
            events = [text] if response.content_type == JSON and text else []
        messages = [json.loads(event) for event in events if event]
        return Reply(response.status, response.content_type, messages, text)

    async def open(self) -> Raw:
        """This bearer's new handshake session."""
        client = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "raw"}}
        init = rpc("initialize", client)
        async with asyncio.timeout(CALL_TIMEOUT_S):
            response = await self.http.post("/mcp", json=init, headers=self.headers({}))
            assert response.status == 200, await response.text()
            await response.read()
        session = Raw(self.http, self.bearer, response.headers["mcp-session-id"])
        initialized = await session.send(without(rpc("notifications/initialized"), "id"))
        assert initialized.status == 202, initialized.text
        return session


# A good value for each field some tool requires ("" for the owned channel's id), and the
# error_code of a call without it.
# fmt: off
REQUIRED: dict[str, tuple[str, str]] = {
    "channel_id": ("", "channel_id_required"), "title": ("t", "title_required"),
    "status": ("s", "invalid_status"), "message": ("m", "invalid_message"),
    "severity": ("low", "invalid_severity"), "event_id": ("e1", "event_id_required"),
    "thing_id": ("t1", "thing_id_required"), "bind_session_id": ("pgdb_absent", "invalid_field"),
}
# fmt: on


def valid(name: str, channel_id: str, *, drop: str = "") -> dict[str, Any]:
    """The arguments of a good call of tool `name` on `channel_id`, without field `drop`."""
    tool = next(tool for tool in TOOLS if name in (tool.name, tool.underscored))
    return {key: REQUIRED[key][0] or channel_id for key in tool.required if key != drop}


# -- tool names and argument shapes ------------------------------------------------------

# fmt: off
BAD_VALUES: list[tuple[str, str, list[dict[str, Any]]]] = [  # (tool, error_code, changes)
    # JSON types other than the schema's
    ("pushgo.message.send", "invalid_json_data", [
        {"title": 5}, {"title": ["t"]}, {"channel_id": 123}, {"tags": "a,b"}, {"tags": [1, 2]},
        {"images": {"a": "b"}}, {"metadata": ["k", "v"]}, {"ttl": 1.5}, {"ttl": True},
        {"op_id": 7}, {"password": 123}]),
    ("pushgo.event.create", "invalid_json_data", [
        {"attrs": ["a", 1]}, {"attrs": "on"}, {"event_time": 1.5}, {"event_time": {"s": 1}},
        {"event_time": True}, {"severity": 3}, {"tags": "t"}]),
    ("pushgo.event.update", "invalid_json_data", [{"event_id": 1}, {"status": ["s"]}]),
    ("pushgo.event.close", "invalid_json_data", [{"ended_at": [1]}, {"message": {"m": 1}}]),
    ("pushgo.thing.create", "invalid_json_data", [
        {"attrs": "on"}, {"attrs": [1]}, {"external_ids": ["x"]}, {"observed_at": False}]),
    ("pushgo.thing.update", "invalid_json_data", [{"thing_id": ["t1"]}]),
    ("pushgo.thing.get", "invalid_json_data", [{"thing_id": 1}]),
    ("pushgo.thing.list", "invalid_json_data", [
        {"limit": "5"}, {"limit": True}, {"limit": 2.5}, {"state": 1}]),
    ("pushgo.message.list", "invalid_json_data", [{"limit": [5]}, {"before_seq": "10"}]),
    ("pushgo.event.get", "invalid_json_data", [{"event_id": {"id": "e1"}}]),
    ("pushgo.channel.bind.start", "invalid_json_data", [{"action": True}]),
    ("pushgo.channel.bind.status", "invalid_json_data", [{"bind_session_id": 5}]),
    ("pushgo.channel.unbind", "invalid_json_data", [{"channel_id": ["x"]}]),
    # the right type, a value out of range
    ("pushgo.message.send", "invalid_timestamp", [{"ttl": "tomorrow"}]),
    ("pushgo.message.send", "invalid_metadata", [{"metadata": {"k": {"deep": 1}}}]),
    ("pushgo.event.create", "invalid_timestamp", [{"event_time": "1.5"}, {"event_time": -1}]),
    ("pushgo.event.create", "invalid_attrs", [{"attrs": {"a": [1]}}]),
    ("pushgo.event.create", "invalid_severity", [{"severity": "urgent"}]),
    ("pushgo.thing.create", "invalid_location", [{"location_type": "moon", "location_value": "x"}]),
    ("pushgo.thing.list", "invalid_field", [{"limit": 0}, {"limit": 501}]),
    ("pushgo.event.list", "invalid_field", [{"limit": -1}]),
    ("pushgo.channel.bind.start", "invalid_field", [{"action": "steal"}]),
    # over a field's own limit, the body well under 32 KiB
    ("pushgo.event.create", "invalid_status", [{"status": "s" * 25}]),
    ("pushgo.event.update", "invalid_message", [{"message": "m" * 513}]),
    ("pushgo.message.send", "invalid_tags", [
        {"tags": ["t" * 65]}, {"tags": [f"t{n}" for n in range(33)]}]),
    ("pushgo.message.send", "invalid_images", [{"images": ["https://x.test/" + "i" * 2048]}]),
    ("pushgo.message.send", "invalid_metadata", [
        {"metadata": {"k": "v" * 513}}, {"metadata": {"k" * 65: "v"}}]),
    ("pushgo.message.send", "invalid_op_id", [{"op_id": "o" * 129}]),
    ("pushgo.message.send", "invalid_channel_id", [{"channel_id": "A" * 30_000}]),
    ("pushgo.thing.create", "invalid_external_ids", [{"external_ids": {"k": "v" * 257}}]),
    ("pushgo.thing.create", "invalid_location", [
        {"location_type": "physical", "location_value": "x" * 257}]),
    ("pushgo.thing.get", "invalid_thing_id", [{"thing_id": "t" * 65}]),
    ("pushgo.event.get", "invalid_event_id", [{"event_id": "e" * 65}]),
    ("pushgo.channel.bind.status", "bind_session_not_found", [{"bind_session_id": "b" * 30_000}]),
    # strange strings: NUL, look-alike letters and digits, invisible and right-to-left marks
    ("pushgo.message.send", "invalid_channel_id", [
        {"channel_id": "\x00" * 26}, {"channel_id": "A" * 25 + "\x00"},
        {"channel_id": "\u0131" * 26}, {"channel_id": "\uff10" * 26},
        {"channel_id": "0" * 13 + "\u200b" + "0" * 13}]),
    ("pushgo.thing.get", "invalid_thing_id", [{"thing_id": "t\x00"}, {"thing_id": "\u202et1"}]),
    ("pushgo.event.get", "invalid_event_id", [{"event_id": "e\x001"}, {"event_id": "\U0001f4a5"}]),
    ("pushgo.message.send", "invalid_op_id", [{"op_id": "op\x00"}]),
    ("pushgo.channel.bind.status", "bind_session_not_found", [{"bind_session_id": "pgdb_\x00"}]),
]
# fmt: on

UNKNOWN_TOOLS = ["pushgo.message.shout", "pushgo_message_shout", "", "PUSHGO.MESSAGE.SEND"]
UNKNOWN_TOOLS += ["pushgo.message.send ", "pushgo-message-send", "pushgo.message", "pushgo_event"]


@pytest.mark.parametrize("era", [LEGACY, MODERN])
async def test_unknown_tools_and_bad_values_are_errors(
    http: Http, assistant: str, store: Store, era: str
) -> None:
    """An unknown tool is a JSON-RPC error; a bad value in a known one, a tool error."""
    got, expected = {}, {}
    async with tool_caller(http, assistant, era) as call:
        for name in UNKNOWN_TOOLS:
            with pytest.raises(MCPError) as raised:
                await tool_error(call, name, valid(SEND, store.channel[0]))
            assert raised.value.code == -32602, name
            await store.unchanged(name)
        for name, code, cases in BAD_VALUES:
            for changes in cases:
                case = (name, repr(changes)[:80])
                arguments = valid(name, store.channel[0]) | changes
                got[case] = await tool_error(call, name, arguments)
                expected[case] = (code, STATUS[ErrorCode(code)])
                await store.unchanged(case)
    assert got == expected


EXTRAS: list[dict[str, Any]] = [  # fields no tool has; a null is absent for known ones only
    {"colour": "red"}, {"Title": "t"}, {"sealed": [{"alg": "x"}]}, {"sealed": None, "extra": None}
]  # fmt: skip


async def test_missing_and_unknown_fields_are_tool_errors(
    http: Http, assistant: str, store: Store
) -> None:
    """Required fields absent, null or blank get their own codes; unknown ones invalid_json_data."""
    assert {name for tool in TOOLS for name in tool.required} == set(REQUIRED)
    got, expected = {}, {}
    async with mcp_session(http, assistant) as session:
        for tool in TOOLS:
            for name in tool.required:
                absent = valid(tool.name, store.channel[0], drop=name)
                for how, value in (("absent", {}), ("null", {name: None}), ("blank", {name: " "})):
                    case = (tool.name, name, how)
                    got[case] = await tool_error(session.call_tool, tool.name, absent | value)
                    expected[case] = (REQUIRED[name][1], 400)
                    await store.unchanged(case)
        # Unknown fields, and sealed: sealing is for paired clients, not assistants.
        for tool in TOOLS:
            for name in (tool.name, tool.underscored):
                no_password = [] if "password" in tool.fields else [{"password": "p" * 12}]
                for extra in EXTRAS + no_password:
                    case = (name, *extra)
                    arguments = valid(name, store.channel[0]) | extra
                    got[case] = await tool_error(session.call_tool, name, arguments)
                    expected[case] = ("invalid_json_data", 400)
                    await store.unchanged(case)
    assert got == expected


# -- sizes -------------------------------------------------------------------------------


def sized_send(size: int, channel_id: str, **arguments: Any) -> bytes:
    """A message.send call of exactly `size` bytes, padded by its title."""
    call = tools_call(SEND, {"channel_id": channel_id, "title": "", **arguments})
    empty = len(json.dumps(call, separators=(",", ":")))
    call["params"]["arguments"]["title"] = "x" * (size - empty)
    padded = json.dumps(call, separators=(",", ":")).encode()
    assert len(padded) == size
    return padded


@pytest.mark.parametrize("oauth_env", LEGACY_ENV)
@pytest.mark.parametrize("legacy", [False, True], ids=["oauth", "legacy"])
async def test_a_body_over_the_limit_gets_a_jsonrpc_413(
    http: Http, assistant: str, store: Store, legacy: bool
) -> None:
    channel_id, password = store.channel
    session = await Raw(http, GATEWAY_TOKEN if legacy else assistant).open()
    extra = {"password": password} if legacy else {}
    too_big = await session.send(sized_send(MAX_BODY + 1, channel_id, **extra))
    await store.unchanged()
    # At the limit exactly, a huge title is fine: titles have no limit of their own.
    assert (await session.send(sized_send(MAX_BODY, channel_id, **extra))).result()
    [title] = await store.titles()
    assert len(title) > MAX_BODY - 300 and set(title) == {"x"}

    assert (too_big.status, too_big.content_type) == (413, "application/json"), too_big.text
    assert too_big.error()["code"] == -32600  # the shape McpEndpoint gives its own 413
    assert too_big.messages[0]["id"] is None


# -- sessions ----------------------------------------------------------------------------


@pytest.mark.parametrize("oauth_env", LEGACY_ENV)
@pytest.mark.parametrize(
    ("owner", "intruder"),
    [("assistant", "another client"), ("assistant", "same client, another grant"),
     ("assistant", "gateway token"), ("gateway token", "assistant")],
)  # fmt: skip
async def test_another_principals_session_is_not_found(
    http: Http, flow: Flow, assistant: str, store: Store, owner: str, intruder: str
) -> None:
    channel_id, password = store.channel
    other = Flow(http)
    await other.register(client_name="Another Assistant")
    bearers = {
        "assistant": assistant,
        "same client, another grant": (await flow.tokens([store.channel]))["access_token"],
        "another client": (await other.tokens([store.channel]))["access_token"],
        "gateway token": GATEWAY_TOKEN,
    }
    await store.mark()
    mine = await Raw(http, bearers[owner]).open()
    theirs = Raw(http, bearers[intruder], mine.session_id)

    secret = {"password": password}  # for the gateway token (legacy mode)
    send = {"channel_id": channel_id, "title": "stolen"} | (secret if "gateway" in intruder else {})
    for method, body in (("POST", tools_call(SEND, send)), ("GET", None)):
        accept = "text/event-stream" if method == "GET" else ACCEPT
        reply = await theirs.send(body, method, {"Accept": accept})
        assert reply.status == 404, (method, reply.text)
        assert reply.error()["code"] == -32600
        await store.unchanged(method)
    reply = await theirs.send(None, "DELETE")
    assert reply.status == 404, reply.text

    # The session is untouched: its owner still calls tools in it.
    listing = {"channel_id": channel_id} | (secret if "gateway" in owner else {})
    reply = await mine.send(tools_call("pushgo.message.list", listing))
    assert reply.result()["messages"] == []


# -- malformed JSON-RPC ------------------------------------------------------------------

Body = Callable[[dict[str, Any]], Any]  # made from a good message.send call, to store nothing
# case: (body, HTTP status, JSON-RPC error code or None for none)
MALFORMED: dict[str, tuple[Body, int, int | None]] = {
    "invalid JSON": (lambda call: b"{not json", 400, -32700),
    "empty body": (lambda call: b"", 400, -32700),
    "truncated call": (lambda call: json.dumps(call).encode()[:-2], 400, -32700),
    "deep nesting": (lambda call: b"[" * 15_000 + b"]" * 15_000, 400, -32700),
    "batch of one call": (lambda call: [call], 400, -32602),
    "empty batch": (lambda call: [], 400, -32602),
    "jsonrpc 1.0 only": (lambda call: {"jsonrpc": "1.0"}, 400, -32602),
    "jsonrpc 1.0 call": (lambda call: call | {"jsonrpc": "1.0"}, 400, -32602),
    "no jsonrpc": (lambda call: without(call, "jsonrpc"), 400, -32602),
    "no method": (lambda call: without(call, "method"), 400, -32602),
    "method not a string": (lambda call: call | {"method": ["tools/call"]}, 400, -32602),
    "a string": (lambda call: b'"tools/call"', 400, -32602),
    "null": (lambda call: b"null", 400, -32602),
    "unknown method": (lambda call: call | {"method": "pushgo/send"}, 200, -32601),
    "params a list": (lambda call: call | {"params": [SEND, {}]}, 400, -32602),
    "params a string": (lambda call: call | {"params": SEND}, 400, -32602),
    "name a number": (lambda call: tools_call(5, {}), 200, -32602),
    "name null": (lambda call: tools_call(None, {}), 200, -32602),
    "name a list": (lambda call: tools_call([SEND], {}), 200, -32602),
    "name an object": (lambda call: tools_call({"tool": "pushgo.thing.list"}, {}), 200, -32602),
    "no name": (lambda call: call | {"params": {"arguments": {"title": "t"}}}, 200, -32602),
    "arguments a list": (lambda call: tools_call(SEND, [["title", "t"]]), 200, -32602),
    "arguments a string": (lambda call: tools_call(SEND, "title=t"), 200, -32602),
    "arguments a number": (lambda call: tools_call(SEND, 5), 200, -32602),
    "arguments true": (lambda call: tools_call(SEND, True), 200, -32602),
    "notification-only call": (lambda call: without(call, "id"), 202, None),
}
# case: (HTTP method, header changes, HTTP status, JSON-RPC error code), sending the good call
BAD_HEADERS: dict[str, tuple[str, dict[str, str], int, int | None]] = {
    "text/plain": ("POST", {"Content-Type": "text/plain"}, 400, None),  # the SDK's plain text
    "form": ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, 400, None),
    "no Content-Type": ("POST", {"Content-Type": "-"}, 400, None),
    "no Accept": ("POST", {"Accept": "-"}, 406, -32600),
    "Accept JSON only": ("POST", {"Accept": "application/json"}, 406, -32600),
    "GET without Accept": ("GET", {"Accept": "-"}, 406, -32600),
    "PUT": ("PUT", {}, 405, -32600),
    "unknown session": ("POST", {"Mcp-Session-Id": "f" * 32}, 404, -32600),
}


def bad_requests(channel_id: str) -> list[tuple[str, Any, str, dict[str, str], int, int | None]]:
    """Every malformed request: (case, body, method, header changes, status, code)."""
    call = tools_call(SEND, {"channel_id": channel_id, "title": "t"})
    made = [(case, body(call), "POST", {}, *rest) for case, (body, *rest) in MALFORMED.items()]
    return made + [
        (case, None if method == "GET" else call, method, headers, *rest)
        for case, (method, headers, *rest) in BAD_HEADERS.items()
    ]


async def test_malformed_jsonrpc_gets_errors_and_stores_nothing(
    http: Http, assistant: str, store: Store
) -> None:
    session = await Raw(http, assistant).open()
    got, expected = {}, {}
    for case, body, method, headers, status, code in bad_requests(store.channel[0]):
        reply = await session.send(body, method, headers)
        got[case] = (reply.status, reply.code())
        expected[case] = (status, code)
        if got[case] == expected[case] and code is not None:
            reply.error()  # the whole shape of a JSON-RPC error
        assert status != 202 or reply.text == "", case
        await store.unchanged(case)
    assert got == expected
    # None of it broke the session.
    reply = await session.send(tools_call("pushgo.message.list", {"channel_id": store.channel[0]}))
    assert reply.result()["messages"] == []


async def test_malformed_requests_do_not_use_up_sessions(
    http: Http, assistant: str, store: Store
) -> None:
    """Refused requests without a session id leave no session behind to crowd out a client."""
    raw, refused = Raw(http, assistant), {}
    bad = bad_requests(store.channel[0])
    for index in range(MAX_SESSIONS + 1):
        case, body, method, headers, _, _ = bad[index % len(bad)]
        refused[case] = (await raw.send(body, method, headers)).status
    await store.unchanged()
    async with mcp_session(http, assistant) as session, asyncio.timeout(CALL_TIMEOUT_S):
        result = await session.call_tool("pushgo.message.list", {"channel_id": store.channel[0]})
    assert not result.is_error
    assert {case: status for case, status in refused.items() if not 400 <= status < 500} == {}


async def test_duplicate_keys_do_not_get_past_the_scope_check(
    http: Http, flow: Flow, store: Store
) -> None:
    """The scope check and the SDK parse the body apart; with duplicate keys both must see the
    same call (both keep the last key), so a tools-only token never lists its channels."""
    tokens = await flow.tokens_with(store.channel, scope="mcp:tools")
    session = await Raw(http, tokens["access_token"]).open()
    head, channel = '{"jsonrpc":"2.0","id":7,', f'{{"channel_id":"{store.channel[0]}"}}'
    call = head + '"method":"tools/call","params":{"name":"%s","name":"%s","arguments":' + channel
    cases = [  # (body, status, what the result holds)
        (call % ("pushgo.message.list", "pushgo.channel.list") + "}}", 403, None),
        (call % ("pushgo.channel.list", "pushgo.message.list") + "}}", 200, "structuredContent"),
        (head + '"method":"tools/list","method":"resources/list"}', 403, None),
        (head + '"method":"resources/list","method":"tools/list"}', 200, "tools"),
    ]
    for body, status, key in cases:
        reply = await session.send(body.encode())
        assert reply.status == status, (body, reply.text)
        result = reply.messages[0]["result"] if key else {}
        assert key is None or (key in result and "resources" not in result), body
        assert "channels" not in result.get("structuredContent", {}), body
    await store.unchanged()


# -- strange strings ---------------------------------------------------------------------


def raw_send(channel_id: str, title: bytes) -> bytes:
    """A message.send call whose title is `title` as it stands in the JSON text."""
    return (
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"pushgo.message.send",'
        b'"arguments":{"channel_id":"' + channel_id.encode() + b'","title":"' + title + b'"}}}'
    )


NOT_UNICODE = [
    rb"\ud800",  # a lone high surrogate
    rb"\udfff",  # a lone low surrogate
    rb"a\udc00b",
    rb"\ud800\u0041",  # a high surrogate, then no low one
    b"\xed\xa0\x80",  # a surrogate encoded in UTF-8: not UTF-8
    b"\xff\xfe",  # not UTF-8 at all
    b"\xc0\xaf",  # an overlong '/'
    b"a\tb",  # a raw control character inside a string
]


async def test_strings_that_are_not_unicode_are_parse_errors(
    http: Http, assistant: str, store: Store
) -> None:
    session = await Raw(http, assistant).open()
    for title in NOT_UNICODE:
        reply = await session.send(raw_send(store.channel[0], title))
        assert (reply.status, reply.code()) == (400, -32700), (title, reply.text)
        await store.unchanged(title)
    # A title has no character rules (as over HTTP): NUL is kept, neither a 500 nor lost.
    assert (await session.send(raw_send(store.channel[0], rb"a\u0000b"))).result()
    assert await store.titles() == ["a\x00b"]


# -- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("oauth_env", LEGACY_ENV)
async def test_secrets_stay_out_of_the_logs(
    http: Http, assistant: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    channel_id, password = store.channel
    caplog.set_level(logging.DEBUG)
    send, secret = {"channel_id": channel_id, "title": "t"}, {"password": password}
    async with mcp_session(http, GATEWAY_TOKEN) as legacy:
        wrong = send | {"password": password[::-1]}
        code = await tool_error(legacy.call_tool, SEND, wrong)
        assert code == ("password_mismatch", 403)
        await store.unchanged()
        for name, more in ((SEND, {"title": "t"}), ("pushgo.message.list", {})):
            arguments = {"channel_id": channel_id} | secret | more
            assert not (await legacy.call_tool(name, arguments)).is_error
    async with mcp_session(http, assistant) as oauth:
        code = await tool_error(oauth.call_tool, SEND, send | secret)
        assert code == ("password_forbidden_in_oauth_mode", 400)
    session = await Raw(http, GATEWAY_TOKEN).open()
    for body in (
        sized_send(MAX_BODY + 1, channel_id, password=password),
        tools_call(SEND, send | secret) | {"jsonrpc": "1.0"},  # refused by SDK validation
        b"{not json " + password.encode(),
    ):
        assert 400 <= (await session.send(body)).status < 500

    server = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert any(r.name == "pushgod.mcp.server" for r in server)  # the tool failures were logged
    for record in server:
        text = record.getMessage() + (record.exc_text or "") + repr(record.__dict__)
        for value in (password, GATEWAY_TOKEN, assistant):
            assert value not in text, (record.name, record.getMessage())
