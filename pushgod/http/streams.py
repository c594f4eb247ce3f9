"""Live streams of a channel: Server-Sent Events, NDJSON and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from aiohttp import HttpVersion11, WSCloseCode, web

from pushgod.http.keys import SERVICES, SETTINGS
from pushgod.http.requests import check_query, path_channel_id, reader_credentials
from pushgod.http.routing import Param, Route
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import compact_json
from pushgod.model.since import Since, parse_kinds, parse_since
from pushgod.service.context import now_ms
from pushgod.service.streams import KEEPALIVE, Batch, Closing, DirectWriter

QUERY = {"since", "types", "poll"}
SSE_RETRY_MS = 3000
DIRECT_WRITE_LIMIT = 64 * 1024
"""Bytes a connection may have waiting in its transport and still take live items straight
from the hub; above it they queue in the stream's bounded buffer and go through the
response (which waits for the client), so a client that stops reading ends up closed as
too far behind. asyncio pauses writers at the same 64 KiB."""


async def _open(
    request: web.Request, direct: DirectWriter | None = None
) -> AsyncGenerator[Any, None]:
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
    return stream.items(since, poll=poll == "1", direct=direct)


def _sse_frame(item: Any) -> bytes:
    if item is KEEPALIVE:
        return b": keepalive\n\n"
    if isinstance(item, Closing):
        return f"event: closed\ndata: {compact_json(item.to_json())}\n\n".encode()
    return b"".join(one.sse for one in item)


def _ndjson_frame(item: Any) -> bytes:
    if item is KEEPALIVE:
        return (compact_json({"type": "keepalive", "at": now_ms()}) + "\n").encode()
    if isinstance(item, Closing):
        return (compact_json(item.to_json()) + "\n").encode()
    return b"".join(one.line for one in item)


_framed: dict[tuple[Callable[[Any], bytes], bool], tuple[Batch, bytes]] = {}
"""The last batch framed for direct writes, by frame function and chunking: the streams
of a channel are all handed the same batch object, so a commit is framed once."""


def _direct_frame(batch: Batch, frame: Callable[[Any], bytes], chunked: bool) -> bytes:
    last = _framed.get((frame, chunked))
    if last is not None and last[0] is batch:
        return last[1]
    data = frame(batch)
    if chunked:
        data = b"%x\r\n%b\r\n" % (len(data), data)
    _framed[frame, chunked] = (batch, data)
    return data


def _direct_writer(
    request: web.Request, frame: Callable[[Any], bytes], chunked: bool
) -> DirectWriter:
    """Live items straight onto the connection, framed as the response would frame them.

    With a thousand streams on a channel, going through the response costs a task wakeup
    and aiohttp's writer per stream and item; this is one transport write. Only called
    while the response has nothing in progress (see DirectWriter), so the bytes on the
    wire stay whole chunks in order.
    """
    transport = request.transport

    def write(batch: Batch) -> bool:
        if (
            transport is None
            or transport.is_closing()  # the client left: the response's next write says so
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            return False
        transport.write(_direct_frame(batch, frame, chunked))
        return True

    return write


async def _send(
    request: web.Request,
    content_type: str,
    frame: Callable[[Any], bytes],
    preamble: bytes = b"",
) -> web.StreamResponse:
    """Write a stream's items as frames until it ends or the client leaves."""
    # HTTP/1.1 gets chunked transfer coding (what aiohttp would choose; proxies pass it
    # through); made explicit because direct writes frame their own chunks. HTTP/1.0
    # clients get the raw bytes and the end of the connection as the end of the body.
    chunked = request.version >= HttpVersion11
    items = await _open(request, _direct_writer(request, frame, chunked))
    response = web.StreamResponse(headers={"Content-Type": content_type, "X-Accel-Buffering": "no"})
    if chunked:
        response.enable_chunked_encoding()
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
                await socket.send_str(compact_json(item.to_json()))
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
