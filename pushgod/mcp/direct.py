"""/mcp's direct path: one `tools/call` in an open session, answered without the SDK's transport.

Through the SDK, every POST passes the session's memory streams, a dispatcher task, the server
runner and sse-starlette's `EventSourceResponse` (four tasks more): about 60% of the daemon's CPU
for an MCP send (bench/README.md, `bench/mcp_send.py`). For the call assistants repeat, this
path does on the request's own task what the SDK does for it: the params are validated by the
SDK's own models for the session's protocol version, the tool runs through the same
`server.call_tool` as the SDK's handler, the result is shaped by the SDK for that version, and
the answer is the transport's: one `event: message` SSE event (whose length is known, so the
body is not chunked).

It serves a request only when all of these hold; anything else goes to the SDK unchanged:

* one JSON-RPC request (not a batch, not a notification) of `tools/call`, naming a tool that
  sends nothing but its result (`DirectTools`), with params the SDK finds valid (its error
  answer comes from the SDK itself);
* the `Mcp-Session-Id` of a session the SDK's manager holds (not terminated, not expired),
  opened by this same principal (another one gets the SDK's 404, as before) and past its
  handshake (`Handshakes`);
* headers the transport takes (Accept of JSON and SSE, a JSON Content-Type), and the session's
  protocol version in `MCP-Protocol-Version`, as the spec asks of clients.

Not done here, as nothing pushgod serves needs it: the SDK's server middleware (OpenTelemetry
spans, a no-op without an exporter), cache hints (pushgod's server sets none), and the
2026-07-28 result stamp (those clients have no session). The SDK's manager has no public way to
look a session up: its `_server_instances` and `_session_owners` are read here, nowhere else.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import anyio
import pydantic_core
from aiohttp import hdrs, web
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from mcp_types import methods as sdk_methods
from pydantic import ValidationError
from starlette.requests import Request

TOOLS_CALL: Final = "tools/call"
HOLD_SLACK_S: Final = 1.0
"""How much earlier than the SDK a session used only through this path may expire, at most."""
_SSE_HEADERS: Final = {  # the transport's and sse-starlette's
    "Cache-Control": "no-cache, no-transform",
    "Connection": "keep-alive",
    "Content-Type": "text/event-stream",
    "x-accel-buffering": "no",
}


def parse(body: bytes) -> Any:
    """A POST body's JSON as the SDK's transport reads it (pydantic's parser), None if it is
    not JSON: the scope check and the SDK then see the same call, duplicate keys included."""
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        return None


CallTool: TypeAlias = Callable[[CallToolRequestParams], Awaitable[CallToolResult]]


@dataclass(frozen=True, slots=True)
class DirectTools:
    """The tools whose calls may be answered directly, by name, and what runs them. Each must
    send the client nothing but its result: there is no stream to carry anything else."""

    names: frozenset[str]
    call: CallTool


class Handshakes:
    """The sessions past their handshake, each with the SDK's live view of it.

    A server middleware: the SDK serves a session alone until it has accepted the session's
    `initialize` (the client's params are known) and one more of its messages has reached the
    server (the client's `notifications/initialized`, usually). A session whose `initialize`
    failed stays with the SDK, which decides what such a session may do. The protocol version
    is read from the SDK's view at each call, since a client may initialize again.
    """

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager
        self._sessions: dict[str, ServerSession] = {}

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        request = ctx.request
        if isinstance(request, Request) and ctx.session.client_params is not None:
            session_id = request.headers.get(MCP_SESSION_ID_HEADER)
            if session_id is not None and session_id not in self._sessions:
                self._add(session_id, ctx.session)
        return await call_next(ctx)

    def get(self, session_id: str) -> ServerSession | None:
        return self._sessions.get(session_id)

    def _add(self, session_id: str, session: ServerSession) -> None:
        # Sessions the manager has dropped are forgotten here, once per new session: the
        # table stays within the manager's session limit plus those closed since.
        open_ids = self._manager._server_instances
        for closed in [known for known in self._sessions if known not in open_ids]:
            del self._sessions[closed]
        self._sessions[session_id] = session


class DirectCalls:
    """Answers the calls this module serves (see its docstring); the rest are left to the SDK."""

    def __init__(self, manager: StreamableHTTPSessionManager, tools: DirectTools) -> None:
        if manager.stateless or manager.json_response or manager.event_store is not None:
            # The answers here are those of stateful sessions, with SSE and no event ids.
            raise ValueError("the direct path needs SSE sessions without an event store")
        self._manager = manager
        self._tools = tools
        self._handshakes = Handshakes(manager)
        manager.app.middleware.append(self._handshakes)

    async def answer(
        self, request: web.Request, message: Any, user: AuthenticatedUser
    ) -> web.Response | None:
        """The answer to `message`, the parsed body of `request`, or None for the SDK's.

        `user` is the verified caller, already the SDK's authenticated user of this task.
        """
        call = self._call(message)
        session_id = request.headers.get(MCP_SESSION_ID_HEADER)
        if call is None or session_id is None or not _transport_takes(request):
            return None
        manager = self._manager
        transport = manager._server_instances.get(session_id)
        idle = transport.idle_scope if transport is not None else None
        if (
            transport is None
            or transport.is_terminated
            or (idle is not None and idle.cancel_called)
            or manager._session_owners.get(session_id) != authorization_context(user)
        ):
            return None
        session = self._handshakes.get(session_id)
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if session is None or version != session.protocol_version:
            return None
        try:
            # What the SDK's server runner checks before it calls the tool handler.
            sdk_methods.validate_client_request(TOOLS_CALL, version, call.params)
            params = CallToolRequestParams.model_validate(call.params or {}, by_name=False)
        except ValidationError:
            return None
        try:
            result = await self._tools.call(params)
        finally:
            _hold(idle, manager.session_idle_timeout)
        # Shaped for the session's version as the runner shapes it, framed as the transport does.
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        shaped = sdk_methods.serialize_server_result(TOOLS_CALL, version, dumped)
        reply = JSONRPCResponse(jsonrpc="2.0", id=call.id, result=shaped)
        data = reply.model_dump_json(by_alias=True, exclude_unset=True)
        return web.Response(
            body=f"event: message\r\ndata: {data}\r\n\r\n".encode(),
            headers={**_SSE_HEADERS, MCP_SESSION_ID_HEADER: session_id},
        )

    def _call(self, message: Any) -> JSONRPCRequest | None:
        """`message` if it is one request of a direct tool, as the SDK's transport reads it."""
        if not isinstance(message, dict) or message.get("method") != TOOLS_CALL:
            return None
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str) or name not in self._tools.names:
            return None
        try:
            call = jsonrpc_message_adapter.validate_python(message, by_name=False)
        except ValidationError:
            return None
        return call if isinstance(call, JSONRPCRequest) else None


def _hold(idle: anyio.CancelScope | None, timeout: float | None) -> None:
    """Restart the session's idle countdown, as a request through the transport does.

    Only once the deadline is `HOLD_SLACK_S` old: moving it reschedules a timer (some 15 us a
    call at full load, measured). An infinite deadline means another request holds the session
    open already.
    """
    if idle is None or timeout is None or idle.deadline == math.inf:
        return
    # The loop's clock is anyio's on asyncio (aiohttp), without its per-call backend lookup.
    deadline = asyncio.get_running_loop().time() + timeout
    if deadline - idle.deadline >= HOLD_SLACK_S:
        idle.deadline = deadline


def _transport_takes(request: web.Request) -> bool:
    """Whether the transport would take these headers; stricter than it is, never looser."""
    content_type = request.headers.get(hdrs.CONTENT_TYPE, "")
    if content_type.split(";", 1)[0].strip() != "application/json":
        return False
    accepted = {
        part.split(";", 1)[0].strip().lower()
        for part in request.headers.get(hdrs.ACCEPT, "").split(",")
    }
    return {"application/json", "text/event-stream"} <= accepted
