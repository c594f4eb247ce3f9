"""The daemon: opens the services, serves HTTP, runs the cleanup, stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from pushgod.config import Settings
from pushgod.http.app import create_app
from pushgod.service.services import Services
from pushgod.store.lock import DataDirLock
from pushgod.systemd import listen_socket, notify, watchdog_interval

log = logging.getLogger(__name__)

DEMO_CHANNEL = "demo"


async def serve(settings: Settings, *, demo: bool = False) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit status."""
    # Catch the signals before anything else: a SIGTERM the instant after READY=1 (or
    # during start-up) must stop the daemon cleanly, not kill it with status -15 / 130.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # One daemon per data directory, and `pushgod restore` waits for none: held until exit.
    with DataDirLock(settings.data_dir, "daemon"):
        return await _serve(settings, stop, demo)


async def _serve(settings: Settings, stop: asyncio.Event, demo: bool) -> int:
    services = Services(settings)
    services.open()
    try:
        if demo and services.channels.count() == 0:
            await _create_demo_channel(services, settings)
        runner = web.AppRunner(
            create_app(settings, services),
            shutdown_timeout=settings.server.shutdown_timeout / 1000,
            access_log=None,
            handle_signals=False,
        )
        await runner.setup()
        try:
            try:
                passed = listen_socket()
            except OSError as error:
                log.error("cannot serve the socket systemd passed: %s", error)
                return 1
            try:
                site = _site(runner, settings, passed)
                await site.start()
            except OSError as error:  # in use, no such address, a port below 1024
                reason = os.strerror(error.errno) if error.errno else str(error)
                log.error("cannot listen on %s: %s", _wanted(settings), reason)
                return 1
            address = _bound_address(site)
            log.info("listening on %s (data in %s)", address, services.store.path)
            if settings.mcp.enabled:
                _warn_about_the_issuer(settings)
            notify(f"READY=1\nSTATUS=listening on {address}")
            async with (
                _watchdog(),
                _periodic(
                    "pushgod.cleanup",
                    settings.retention.cleanup_interval / 1000,
                    services.cleanup.run_once,
                ),
                _bridge(settings, services, address),
            ):
                await stop.wait()
                log.info("stopping")  # before the bridge and the cleanup task wind down
                notify("STOPPING=1")
        finally:
            await runner.cleanup()
    finally:
        services.close()
    log.info("stopped")
    return 0


def _warn_about_the_issuer(settings: Settings) -> None:
    """OAuth tokens cross the network: say so when nothing keeps them safe there."""
    base = settings.server.public_base_url
    host = settings.server.host
    loopback = host in ("127.0.0.1", "::1", "localhost")
    if not base:
        log.warning(
            "server.public_base_url is unset: the OAuth issuer and links follow each "
            "request's Host header. Set it to the URL assistants use "
            "(https://push.example.net; PUSHGO_PUBLIC_BASE_URL works too)"
        )
    elif not base.startswith("https://") and not loopback:
        log.warning(
            "server.public_base_url %s is not https while pushgod listens on %s: OAuth "
            "tokens and channel passwords on the consent page cross the network in clear. "
            "Put pushgod behind an https reverse proxy or tunnel (docs/oauth.md)",
            base,
            host,
        )


def _site(runner: web.AppRunner, settings: Settings, sock: socket.socket | None) -> web.BaseSite:
    """The socket systemd passed (pushgod.socket), else server.host and server.port."""
    if sock is not None:
        log.info("serving the socket systemd passed; server.host and server.port are unused")
        return web.SockSite(runner, sock)
    return web.TCPSite(runner, settings.server.host, settings.server.port)


def _wanted(settings: Settings) -> str:
    host = settings.server.host
    return (
        f"http://[{host}]:{settings.server.port}"
        if ":" in host
        else f"http://{host}:{settings.server.port}"
    )


def _bound_address(site: web.BaseSite) -> str:
    server = site._server  # aiohttp keeps the listening server here; needed for port 0
    if isinstance(server, asyncio.base_events.Server) and server.sockets:
        address = server.sockets[0].getsockname()
        if isinstance(address, str):  # ListenStream=/run/pushgod.sock: a Unix socket
            return f"unix:{address}"
        host, port = address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return site.name


@contextlib.asynccontextmanager
async def _watchdog() -> AsyncIterator[None]:
    """WATCHDOG=1 from the event loop itself: a loop that hangs stops the pings, and
    systemd kills and restarts the daemon (WatchdogSec= in pushgod.service)."""
    interval = watchdog_interval()
    if interval is None:
        yield
        return

    async def ping() -> None:
        while True:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    log.debug("pinging the systemd watchdog every %.1f s", interval)
    task = asyncio.create_task(ping(), name="pushgod.watchdog")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def _bridge(settings: Settings, services: Services, address: str) -> AsyncIterator[None]:
    """Keep the MQTT bridge connected while the daemon runs, when MQTT is enabled."""
    if not settings.mqtt.enabled:
        yield
        return
    from pushgod.mqtt.bridge import Bridge  # aiomqtt and paho load only when MQTT is on

    def report(connected: bool) -> None:
        broker = "connected" if connected else "not connected"
        notify(f"STATUS=listening on {address}; MQTT broker {broker}")

    bridge = Bridge(settings.mqtt, services, report)
    task = asyncio.create_task(bridge.run(), name="pushgod.mqtt")
    try:
        yield
    finally:
        await bridge.stop()
        try:  # a connect in progress may not notice the stop for its whole timeout
            await asyncio.wait_for(task, settings.server.shutdown_timeout / 1000)
        except TimeoutError:
            log.warning("the MQTT bridge did not stop in time; closed its connection")


@contextlib.asynccontextmanager
async def _periodic(
    name: str, interval_s: float, job: Callable[[], Awaitable[object]]
) -> AsyncIterator[None]:
    """Run `job` now and every `interval_s` in a named task; failures are logged, not fatal."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("%s failed; it runs again in %.0f s", name, interval_s)
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _create_demo_channel(services: Services, settings: Settings) -> None:
    row, password = await services.channels.create(None, DEMO_CHANNEL)
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison, not a bind
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    body = (
        f'{{"channel_id":"{row.id}","password":"{password}",'
        '"title":"Hello from pushgod","body":"It works."}'
    )
    url = f"http://{host}:{settings.server.port}/message"
    print(
        "pushgod: created the demo channel (its password is shown only this once)\n"
        f"  channel_id: {row.id}\n"
        f"  password:   {password}\n"
        "  send a message with:\n"
        f"  curl -sS {url} -H 'Content-Type: application/json' -d {shlex.quote(body)}\n"
        f"  then read it back:\n"
        f"  curl -sS -u {row.id}:{password} "
        f"http://{host}:{settings.server.port}/api/v1/channels/{row.id}/messages",
        file=sys.stdout,
        flush=True,
    )
