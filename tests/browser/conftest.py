"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, the real daemon with
MCP on, and a client's real redirect target.

Chromium is the system's (`/usr/bin/chromium`, from `apt-get install chromium`, which
`make test` runs); Playwright never downloads a browser here. The flags are the ones this
closed network needs: without the background-networking ones Chromium keeps dialling
Google's hosts. A failed test leaves a full-page screenshot in its tmp_path and prints where.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from daemon.harness import READY_TIMEOUT_S, Daemon
from playwright.async_api import Page, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]
TIMEOUT_MS = 15_000
"""Every Playwright action, navigation and `expect` gives up after this: a guard, not a wait."""
GUARD_S = TIMEOUT_MS / 1000

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixture teardown knows whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; the tests fail, saying how to get it, when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests use Debian's Chromium, never a downloaded "
            "one. `make test` installs it (apt-get install chromium)."
        )
    return CHROMIUM


@pytest.fixture
async def browser_page(
    chromium: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Page]:
    """A fresh page in a fresh headless Chromium (own profile, no cookies)."""
    flags = [*CHROMIUM_FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=flags, timeout=TIMEOUT_MS
        )
        try:
            context = await browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            context.set_default_navigation_timeout(TIMEOUT_MS)
            page = await context.new_page()
            yield page
            if failed(request) and not page.is_closed():
                screenshot = tmp_path / "failure.png"
                await page.screenshot(path=screenshot, full_page=True)
                print(f"screenshot of {page.url} when {request.node.nodeid} failed: {screenshot}")
        finally:
            await browser.close()


@pytest.fixture
def mcp_daemon(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Daemon]:
    """`pushgod serve` with MCP (and so the OAuth server and its pages) on, on a fresh data dir.

    Its stdout and stderr are printed when the test failed.
    """
    # NOTIFY_SOCKET paths are limited to 107 bytes; tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="pushgod-") as sockets:
        daemon = Daemon(tmp_path / "daemon", Path(sockets) / "notify")
        try:
            daemon.spawn(environ={"PUSHGOD_MCP_ENABLED": "true"})
            daemon.wait_notify("READY=1", READY_TIMEOUT_S)
            yield daemon
        finally:
            problem = daemon.close()
    if problem or failed(request):
        print(daemon.output())
    if problem:
        pytest.fail(problem)


@dataclass
class Callback:
    """An OAuth client's redirect URI, served for real: it records each query and says "ok"."""

    url: str
    hits: list[dict[str, str]] = field(default_factory=list)
    """Each request's query, decoded; a name that came twice fails `next()`."""
    arrived: asyncio.Queue[list[tuple[str, str]]] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.Response:
        pairs = list(request.query.items())
        self.hits.append(dict(pairs))
        self.arrived.put_nowait(pairs)
        return web.Response(text="ok")

    def returned_to(self, url: str) -> bool:
        """For `page.wait_for_url`: the browser is at the redirect URI, with a query."""
        return url.startswith(f"{self.url}?")

    async def next(self) -> dict[str, str]:
        """The query of the next request to the redirect URI (fails after GUARD_S)."""
        async with asyncio.timeout(GUARD_S):
            pairs = await self.arrived.get()
        query = dict(pairs)
        assert len(query) == len(pairs), f"a parameter came twice: {pairs}"
        return query


@pytest.fixture
async def callback(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Callback:
    """A tiny aiohttp app on 127.0.0.1 (a port of its own) at /callback; anything else 404s."""
    app = web.Application()
    recorder = Callback(url="")
    app.router.add_get("/callback", recorder.handle)
    server = await aiohttp_server(app)
    recorder.url = str(server.make_url("/callback"))
    return recorder
