"""Live streams of a channel: Server-Sent Events, NDJSON and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from aiohttp import WSCloseCode, web

from pushgod.http.keys import SERVICES, SETTINGS
from pushgod.http.requests import check_query, path_channel_id, reader_credentials
from pushgod.http.routing import Param, Route
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.since import Since, parse_kinds, parse_since
from pushgod.service.context import now_ms
from pushgod.service.streams import KEEPALIVE, Closing

QUERY = {"since", "types", "poll"}
SSE_RETRY_MS = 3000


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def _open(request: web.Request) -> AsyncGenerator[Any, None]:
    """Parse and authorize before anything is sent, so errors are the usual envelope."""
    check_query(request, QUERY)
    poll = request.query.get("poll", "0")
    if poll not in ("0", "1"):
        raise PushgodError(ErrorCode.INVALID_QUERY, "poll must be 0 or 1")
    since = parse_since(request.query.get("since"), now_ms())
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is not None and "since" not in request.query:
        if not (last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) < 16):
            raise PushgodError(ErrorCode.INVALID_QUERY, "Last-Event-ID must be a sequence number")
        since = Since(after_seq=int(last_event_id))
    services = request.app[SERVICES]
    stream = await services.streams.open(
        reader_credentials(request),
        path_channel_id(request),
        parse_kinds(request.query.get("types")),
    )
    return stream.items(since, poll=poll == "1")


def _sse_frame(item: Any) -> bytes:
    if item is KEEPALIVE:
        return b": keepalive\n\n"
    if isinstance(item, Closing):
        return f"event: closed\ndata: {_dumps(item.to_json())}\n\n".encode()
    return b"".join(one.sse for one in item)


def _ndjson_frame(item: Any) -> bytes:
    if item is KEEPALIVE:
        return (_dumps({"type": "keepalive", "at": now_ms()}) + "\n").encode()
    if isinstance(item, Closing):
        return (_dumps(item.to_json()) + "\n").encode()
    return b"".join(one.line for one in item)


async def _send(
    request: web.Request,
    content_type: str,
    frame: Callable[[Any], bytes],
    preamble: bytes = b"",
) -> web.StreamResponse:
    """Write a stream's items as frames until it ends or the client leaves."""
    items = await _open(request)
    response = web.StreamResponse(headers={"Content-Type": content_type, "X-Accel-Buffering": "no"})
    await response.prepare(request)
    try:
        if preamble:
            await response.write(preamble)
        async for item in items:
            await response.write(frame(item))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; the next write told us
    finally:
        await items.aclose()  # unsubscribes from the hub at once
    return response


async def sse(request: web.Request) -> web.StreamResponse:
    retry = f"retry: {SSE_RETRY_MS}\n\n".encode()
    return await _send(request, "text/event-stream", _sse_frame, retry)


async def ndjson(request: web.Request) -> web.StreamResponse:
    return await _send(request, "application/x-ndjson", _ndjson_frame)


async def websocket(request: web.Request) -> web.StreamResponse:
    items = await _open(request)
    keepalive_s = request.app[SETTINGS].streams.keepalive / 1000
    socket = web.WebSocketResponse(heartbeat=keepalive_s)
    await socket.prepare(request)

    async def pump() -> None:
        async for item in items:
            if item is KEEPALIVE:
                continue  # the WebSocket heartbeat (ping) keeps the connection alive
            if isinstance(item, Closing):
                await socket.send_str(_dumps(item.to_json()))
                await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=item.reason.encode())
                return
            for one in item:
                await socket.send_str(one.json)
        await socket.close()

    sender = asyncio.create_task(pump(), name="pushgod.stream.ws")
    try:
        async for _ in socket:  # the client sends nothing we use; this notices it leaving
            pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
        await items.aclose()
    return socket


CHANNEL_ID = Param("channel_id", "Channel id.", {"type": "string"}, "path", True)
PARAMS = (
    CHANNEL_ID,
    Param(
        "since",
        "Replay before live items: all, latest, a sequence number (below 1,000,000,000), a "
        "unix timestamp (s or ms) or a duration back from now (10m). Absent: live only. SSE "
        "also takes the Last-Event-ID header.",
        {"type": "string"},
    ),
    Param("types", "Comma-separated: message, event, thing (default all).", {"type": "string"}),
    Param("poll", "1: send the replay, then close.", {"type": "string", "enum": ["0", "1"]}),
)
READ_AUTH = ("bearerToken", "channelBasic")
BASE = "/api/v1/channels/{channel_id}"

ROUTES = [
    Route(
        "GET",
        f"{BASE}/sse",
        sse,
        "channel-sse",
        "Server-Sent Events: one event per item, its id the sequence number",
        "streams",
        READ_AUTH,
        params=PARAMS,
    ),
    Route(
        "GET",
        f"{BASE}/json",
        ndjson,
        "channel-json",
        "NDJSON: one JSON object per line and item",
        "streams",
        READ_AUTH,
        params=PARAMS,
    ),
    Route(
        "GET",
        f"{BASE}/ws",
        websocket,
        "channel-ws",
        "WebSocket: one text message per item",
        "streams",
        READ_AUTH,
        params=PARAMS,
    ),
]
