"""Fetching Client ID Metadata Documents from a real HTTPS server on 127.0.0.1.

The server's certificate is self-signed (it is its own CA) and trusted through SSL_CERT_FILE,
which `fetch_client_metadata` honours because it builds its TLS context per fetch. Every
request the server receives is recorded, so a refusal can be shown to have happened before
any connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.service import client_metadata
from pushgod.service.client_metadata import (
    MAX_DOCUMENT_BYTES,
    fetch_client_metadata,
    is_public_address,
    parse_max_age,
)

from .tls import Cert, make_cert

GOOD = "/oauth/client-metadata"
CACHE_POLICIES = {"hour": "public, max-age=3600", "never": "no-store, max-age=60"}
"""Cache-Control headers the good document is served with, by `?cache=` name."""


@dataclass
class Server:
    port: int
    seen: list[str] = field(default_factory=list)

    def url(self, path: str = GOOD, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"


def document_for(request: web.Request) -> dict[str, Any]:
    return {
        "client_id": str(request.url),
        "client_name": "Test client",
        "redirect_uris": ["http://127.0.0.1/callback"],
    }


@asynccontextmanager
async def serve(cert: Cert) -> AsyncIterator[Server]:
    """An HTTPS server on 127.0.0.1 with the documents and misbehaviours the tests need."""
    server = Server(port=0)
    release = asyncio.Event()  # never set while a test runs; set at teardown

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        server.seen.append(request.path_qs)
        return await handler(request)

    async def good(request: web.Request) -> web.Response:
        policy = CACHE_POLICIES.get(request.query.get("cache", ""))
        headers = {} if policy is None else {"Cache-Control": policy}
        return web.json_response(document_for(request), headers=headers)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(GOOD)

    async def typed(request: web.Request) -> web.Response:
        body = json.dumps(document_for(request)).encode()
        return web.Response(body=body, headers={"Content-Type": request.query["type"]})

    async def raw(request: web.Request) -> web.Response:
        return web.Response(body=request.query["body"].encode(), content_type="application/json")

    async def big(request: web.Request) -> web.StreamResponse:
        """Chunked, no Content-Length: only counting what was read can stop it."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            await response.write(b'{"padding": "')
            for _ in range(1024):  # 1 MiB at most, so a client that never stops still ends
                await response.write(b"x" * 1024)
            await response.write(b'"}')
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass  # the client stopped reading, as it should
        return response

    async def big_sized(request: web.Request) -> web.Response:
        """Says its size up front: refused before the body is read."""
        body = b'{"padding": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}'
        return web.Response(body=body, content_type="application/json")

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(document_for(request))

    app = web.Application(middlewares=[record])
    app.router.add_get(GOOD, good)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/typed", typed)
    app.router.add_get("/raw", raw)
    app.router.add_get("/big", big)
    app.router.add_get("/big-sized", big_sized)
    app.router.add_get("/slow", slow)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server.port = runner.addresses[0][1]
        yield server
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
def cert(tmp_path: Path) -> Cert:
    localhost = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    return make_cert(tmp_path / "localhost", localhost)


@pytest.fixture
async def server(cert: Cert, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """The server, its certificate trusted by the fetch through SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_file))
    async with serve(cert) as started:
        yield started


async def refused(url: str, *, allow_private: bool = True) -> PushgodError:
    with pytest.raises(PushgodError) as caught:
        await fetch_client_metadata(url, allow_private=allow_private)
    assert caught.value.code is ErrorCode.INVALID_CLIENT_METADATA
    assert caught.value.status == 400
    return caught.value


# --- the document arrives ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "max_age"),
    [("hour", 3600), (None, None), ("never", 0)],
)
async def test_good_document_round_trips_with_its_max_age(
    server: Server, policy: str | None, max_age: int | None
) -> None:
    url = server.url()
    query = "" if policy is None else f"?cache={policy}"
    document, age = await fetch_client_metadata(url + query, allow_private=True)
    assert document == {
        "client_id": url + query,
        "client_name": "Test client",
        "redirect_uris": ["http://127.0.0.1/callback"],
    }
    assert age == max_age
    assert server.seen == [GOOD + query]


# --- refused before any connection -------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_loopback_is_refused_unless_private_is_allowed(server: Server, host: str) -> None:
    error = await refused(server.url(host=host), allow_private=False)
    assert "not a public address" in error.message
    assert server.seen == []


async def test_private_ip_literal_is_refused() -> None:
    error = await refused("https://10.1.2.3/client", allow_private=False)
    assert "10.1.2.3" in error.message and "not a public address" in error.message


async def test_ipv4_mapped_loopback_is_refused(server: Server) -> None:
    error = await refused(server.url(host="[::ffff:127.0.0.1]"), allow_private=False)
    assert "not a public address" in error.message
    assert server.seen == []


async def test_http_is_refused(server: Server) -> None:
    error = await refused(f"http://localhost:{server.port}{GOOD}")
    assert "https" in error.message
    assert server.seen == []


async def test_userinfo_is_refused_without_echoing_it(server: Server) -> None:
    error = await refused(f"https://alice:hunter2@localhost:{server.port}{GOOD}")
    assert "user information" in error.message
    assert "hunter2" not in error.message and "alice" not in error.message
    assert server.seen == []


async def test_fragment_is_refused(server: Server) -> None:
    error = await refused(server.url(GOOD + "#section"))
    assert "fragment" in error.message
    assert server.seen == []


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://localhost", "path"),
        ("https://localhost/", "path"),
        ("https://localhost/a/../client", ". or .."),
        ("https://localhost/a/%2E%2E/client", ". or .."),
        ("https://@localhost/client", "user information"),
        ("https://localhost:99999/client", "not a valid URL"),
        ("https://localhost/" + "a" * 2048, "longer than"),
        ("https://local host/client", "space"),
    ],
)
async def test_malformed_url_is_refused(url: str, rule: str) -> None:
    assert rule in (await refused(url)).message


# --- refused answers ---------------------------------------------------------------------


async def test_redirect_is_not_followed(server: Server) -> None:
    error = await refused(server.url("/redirect"))
    assert "redirect" in error.message
    assert server.seen == ["/redirect"]


async def test_not_found_is_refused(server: Server) -> None:
    error = await refused(server.url("/missing"))
    assert "HTTP 404" in error.message


@pytest.mark.parametrize("path", ["/big", "/big-sized"])
async def test_oversized_body_is_refused(server: Server, path: str) -> None:
    error = await refused(server.url(path))
    assert f"larger than {MAX_DOCUMENT_BYTES} bytes" in error.message


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json-seq", "application/json; charset=latin-1"]
)
async def test_other_content_type_is_refused(server: Server, content_type: str) -> None:
    error = await refused(server.url("/typed?" + urlencode({"type": content_type})))
    assert "Content-Type application/json" in error.message


async def test_utf8_charset_suffix_is_accepted(server: Server) -> None:
    url = server.url("/typed?" + urlencode({"type": 'application/json; charset="UTF-8"'}))
    document, _ = await fetch_client_metadata(url, allow_private=True)
    assert document["client_name"] == "Test client"


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("{not json", "not valid JSON"),
        ('{"a": NaN}', "not valid JSON"),
        ('{"secret-looking key": 1, "secret-looking key": 2}', "repeats a key"),
        ('["an", "array"]', "not a JSON object"),
    ],
)
async def test_invalid_json_or_non_object_is_refused(server: Server, body: str, rule: str) -> None:
    error = await refused(server.url("/raw?" + urlencode({"body": body})))
    assert rule in error.message
    assert "secret-looking" not in error.message  # nothing of the body comes back


async def test_slow_server_is_refused_by_the_timeout(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_metadata, "FETCH_TIMEOUT_S", 0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await refused(server.url("/slow"))
    assert "took longer than 0.5 s" in error.message
    assert loop.time() - started < 3
    assert server.seen == ["/slow"]


# --- TLS is verified ---------------------------------------------------------------------


async def test_certificate_for_another_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_cert(tmp_path / "other", [x509.DNSName("example.invalid")])
    monkeypatch.setenv("SSL_CERT_FILE", str(other.cert_file))  # trusted, but for another name
    async with serve(other) as server:
        error = await refused(server.url())
        assert "certificate" in error.message
        cause = error.__cause__
        assert isinstance(cause, aiohttp.ClientConnectorCertificateError)
        assert isinstance(cause.certificate_error, ssl.SSLCertVerificationError)
        assert "hostname mismatch" in str(cause.certificate_error.verify_message).lower()
        assert server.seen == []


async def test_untrusted_certificate_is_refused(
    cert: Cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system's CAs only
    async with serve(cert) as server:
        error = await refused(server.url())
        assert "certificate" in error.message
        assert server.seen == []


# --- the rules as tables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("0.0.0.0", False),  # noqa: S104 - an address to check, not to bind
        ("224.0.0.251", False),  # mDNS multicast
        ("255.255.255.255", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:192.168.1.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:c0a8:0101::1", False),  # 6to4 of 192.168.1.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    ("headers", "max_age"),
    [
        ([], None),
        (["public"], None),
        (["max-age=60"], 60),
        (["Public, Max-Age=60, must-revalidate"], 60),
        (['max-age="60"'], 60),
        (["max-age=60", "max-age=30"], 30),
        (["max-age=60, no-store"], 0),
        (["max-age=soon"], 0),
        (["max-age=-1"], 0),
        (["max-age=" + "9" * 5000], 2**31),
    ],
)
def test_max_age(headers: list[str], max_age: int | None) -> None:
    assert parse_max_age(headers) == max_age
