"""The reference server: bare aiohttp answering POST /message with pushgod's envelope.

GET /healthz answers too, for bench/footprint.py's time to the first 200.

It does what any aiohttp JSON endpoint must do (read and parse the body, make two ids,
serialize the reply) and nothing pushgod adds (validation, authentication, storage,
middlewares). Run by bench/send.py: `python bench/bare_server.py` with NOTIFY_SOCKET set;
it listens on 127.0.0.1 on a port of its own choosing and says where with READY=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket

from aiohttp import web


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def message(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    data = {
        "channel_id": body["channel_id"],
        "op_id": secrets.token_hex(16),
        "message_id": secrets.token_hex(16),
        "accepted": True,
    }
    return web.json_response({"success": True, "data": data}, dumps=_dumps)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "data": {"status": "ok"}}, dumps=_dumps)


def _notify(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


async def main() -> None:
    app = web.Application()
    app.router.add_post("/message", message)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # where aiohttp keeps the listening server; needed for port 0
    assert isinstance(server, asyncio.base_events.Server)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _notify(f"READY=1\nSTATUS=listening on http://127.0.0.1:{port}")
    try:
        await stop.wait()
    finally:
        _notify("STOPPING=1")
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
