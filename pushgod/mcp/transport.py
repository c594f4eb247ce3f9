"""An ASGI bridge: one aiohttp handler serves one request of an ASGI HTTP app.

Written for the MCP SDK's Streamable HTTP session manager, which is pure ASGI (Starlette requests,
sse-starlette streams). aiohttp-asgi does not fit: after the body its `receive()` returns empty
bodies at once and never `http.disconnect`, so sse-starlette's disconnect listener spins without
yielding and starves the loop (measured, reference/python-libs.md section 1). Here `receive()`
hands over the body once, then blocks until the peer goes away (or our response is complete), as
uvicorn does; `send()` streams straight to a `web.StreamResponse`; writes after a disconnect are
dropped, as uvicorn does for ASGI spec 2.3.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping
from typing import Any, Final, TypeAlias

from aiohttp import web

log = logging.getLogger(__name__)

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
AsgiApp: TypeAlias = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]

DISCONNECT_POLL_S: Final = 1.0
"""How often a blocked `receive()` looks at the connection. aiohttp has no public disconnect
callback, so this bounds how late a vanished client is noticed; an idle open stream costs about
0.007 s of CPU per 10 s at this rate (reference/python-libs.md section 1)."""

_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}


class AsgiBridge:
    """Serves an ASGI HTTP app from aiohttp handlers: `await bridge(request)` in a handler.

    The request body is read whole first, so it is bounded by the application's
    `client_max_size` (aiohttp raises `HTTPRequestEntityTooLarge` past it). Extra scope entries
    (for example `{"user": ..., "auth": ...}`, which the MCP SDK reads) are merged into the scope,
    and `scope["aiohttp.request"]` is the aiohttp request.
    """

    def __init__(self, app: AsgiApp, *, disconnect_poll_s: float = DISCONNECT_POLL_S) -> None:
        self._app = app
        self._disconnect_poll_s = disconnect_poll_s
        self._detached: set[asyncio.Task[None]] = set()

    async def __call__(
        self, request: web.Request, extra_scope: Mapping[str, Any] | None = None
    ) -> web.StreamResponse:
        body = await request.read()
        exchange = _Exchange(request, body, self._disconnect_poll_s)
        call = self._app(_scope(request, extra_scope), exchange.receive, exchange.send)
        # The app runs in a task of its own (with a copy of this context) so that cancelling the
        # handler does not cancel it: aiohttp cancels the handler of a client that left when
        # handler_cancellation is on (always in aiohttp's TestServer), while an ASGI app expects to
        # run on and see http.disconnect, as under uvicorn. Cancelled mid-request, the SDK's session
        # manager discards a new session even after it answered 200: the client's next request
        # then gets 404 (SDK clients close the SSE response as soon as they have the reply).
        task = asyncio.create_task(call, name=f"asgi {request.method} {request.path}")
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                if not exchange.disconnected():
                    task.cancel()  # not a departed client (shutdown timeout): stop the app too
                self._detach(task)
            raise
        except Exception:
            if not exchange.started:
                raise  # nothing sent yet: the app's error middleware answers
            # Too late for an error response; cut the connection so the client cannot take the
            # partial body for a whole one (uvicorn does the same).
            log.exception("ASGI app failed mid-response to %s %s", request.method, request.path)
            return exchange.abort()
        return await exchange.finish()

    def _detach(self, task: asyncio.Task[None]) -> None:
        """Keep an app task that outlived its handler until it ends; `aclose` ends the rest."""
        self._detached.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._detached.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ASGI app failed after its client left", exc_info=task.exception())

    async def aclose(self) -> None:
        """Cancel and await the app tasks still running for clients that left."""
        tasks = list(self._detached)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Exchange:
    """The ASGI `receive`/`send` pair of one request, and the aiohttp response they build."""

    def __init__(self, request: web.Request, body: bytes, poll_s: float) -> None:
        self._request = request
        self._body: bytes | None = body
        self._poll_s = poll_s
        self._response: web.StreamResponse | None = None
        self._complete = asyncio.Event()  # the last body chunk went out (or was dropped)

    @property
    def started(self) -> bool:
        return self._response is not None

    def disconnected(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        # Block until the peer leaves or our response is complete; sse-starlette's disconnect
        # listener loops on receive() and must not get an immediate answer.
        while not (self._complete.is_set() or self.disconnected()):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._start(message)
        elif kind == "http.response.body":
            await self._write(message)
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")

    async def _start(self, message: Message) -> None:
        if self._response is not None:
            raise RuntimeError("the ASGI app started its response twice")
        response = web.StreamResponse(status=message["status"])
        for name, value in message.get("headers", ()):
            response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        self._response = response
        # Sent at once: a Streamable HTTP client waits for the headers of an SSE stream.
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(self._request)

    async def _write(self, message: Message) -> None:
        response = self._response
        if response is None:
            raise RuntimeError("the ASGI app sent a body before starting its response")
        more = bool(message.get("more_body", False))
        if not self._complete.is_set() and not self.disconnected() and response.prepared:
            try:
                chunk = message.get("body", b"")
                if chunk:
                    await response.write(chunk)
                if not more:
                    await response.write_eof()
            except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
                log.debug("client left during %s %s", self._request.method, self._request.path)
        if not more:
            self._complete.set()

    async def finish(self) -> web.StreamResponse:
        """The response to return from the handler, once the app has returned."""
        response = self._response
        if response is None:
            log.error(
                "ASGI app returned without a response to %s %s",
                self._request.method,
                self._request.path,
            )
            return web.Response(status=500, text="the server sent no response")
        if response.prepared and not self._complete.is_set() and not self.disconnected():
            # The app returned mid-stream (for example cancelled); end the body cleanly.
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
        self._complete.set()
        return response

    def abort(self) -> web.StreamResponse:
        """Close the connection under a response the app could not finish."""
        assert self._response is not None
        transport = self._request.transport
        if transport is not None:
            transport.close()
        self._complete.set()
        return self._response


def _scope(request: web.Request, extra: Mapping[str, Any] | None) -> Scope:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    local = transport.get_extra_info("sockname") if transport is not None else None
    scope: Scope = {
        "type": "http",
        "asgi": dict(_ASGI),
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": _address(peer),
        "server": _address(local),
        "state": {},
        "aiohttp.request": request,
    }
    if extra:
        scope.update(extra)
    return scope


def _address(info: Any) -> tuple[str, int] | None:
    """(host, port) of a socket address; None for a Unix socket or an unknown one."""
    if isinstance(info, tuple | list) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
