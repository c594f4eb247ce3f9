"""Fetching an OAuth Client ID Metadata Document (CIMD) without being turned against our network.

MCP clients name themselves with an https URL as `client_id`; the authorization server fetches
that URL to learn the client's name and redirect URIs. The URL comes from whoever opens the
authorization page, so a naive fetch is a server-side request forgery (SSRF) tool: it would let
anyone make pushgod, which sits inside a home network, send requests to the router, the NAS or
Home Assistant and report how they answered. So:

* only `https://host/path` URLs without user information or fragment are fetched;
* the host is resolved once and every address is checked: unless `allow_private` (tests, a
  deliberately local client), one address that is not globally routable refuses the fetch;
* the connection goes only to the addresses that were checked. aiohttp is handed a resolver that
  answers with them, so a DNS rebinding attacker (a name that resolves to a public address for
  the check and to 192.168.1.1 for the connection) gets no second lookup to answer;
* TLS still verifies the certificate against the URL's host name;
* no redirects, one deadline for the whole fetch, a small body read incrementally, no
  compression (a small body must not inflate into a large one), and strict JSON.

Error messages name the host and the rule, never the response body or the URL's user
information. What the document says (`client_id` equal to the URL, `redirect_uris`) is checked
by the caller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import strict_json

MAX_URL_CHARS = 2048
MAX_DOCUMENT_BYTES = 16 * 1024
FETCH_TIMEOUT_S = 5.0
"""One deadline for resolving, connecting, the TLS handshake and reading the body."""
MAX_AGE_CAP_S = 2**31
"""The largest max-age RFC 9111 (1.2.2) asks a cache to honour."""

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052): the gateway connects to the embedded IPv4 address."""
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


def _refuse(message: str) -> PushgodError:
    return PushgodError(ErrorCode.INVALID_CLIENT_METADATA, message)


async def fetch_client_metadata(
    url: str, *, allow_private: bool
) -> tuple[dict[str, Any], int | None]:
    """The JSON object at `url` and its Cache-Control max-age in seconds (None when absent).

    Raises `invalid_client_metadata` when the URL breaks a rule, the host resolves to an
    address that is not globally routable (unless `allow_private`), the fetch fails or times
    out, or the answer is not a 200 with a JSON object of at most MAX_DOCUMENT_BYTES.
    """
    target = _parse_url(url)
    host = target.raw_host
    assert host is not None  # _parse_url refuses a URL without one
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            addresses = await _resolve(host, target.port or 443)
            if not allow_private:
                for address in addresses:
                    if not is_public_address(address):
                        raise _refuse(
                            f"the client_id host {host} resolves to {address}, "
                            "which is not a public address"
                        )
            # Loading the CA bundle takes tens of milliseconds; keep it off the loop. A fresh
            # context also honours SSL_CERT_FILE as it is now (aiohttp's own default context
            # is built once, when aiohttp is imported).
            context = await asyncio.to_thread(ssl.create_default_context)
            return await _get(target, addresses, context)
    except TimeoutError:
        raise _refuse(
            f"fetching the client metadata from {host} took longer than {FETCH_TIMEOUT_S:g} s"
        ) from None


def is_public_address(address: IPAddress) -> bool:
    """Whether `address` is globally routable: not loopback, private, link-local, multicast,
    reserved, unspecified, shared (100.64.0.0/10), documentation, nor an IPv6 form that
    carries such an IPv4 address (mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # the socket connects to the IPv4 address
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:  # the gateway connects to the embedded IPv4 address
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if address.is_site_local:  # fec0::/10: deprecated, but still not the internet
            return False
    # Python 3.11's is_global leaves multicast (224.0.0.0/4, ff00::/8) in, so name it.
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def _parse_url(url: str) -> URL:
    """`url` as aiohttp will request it, after the CIMD rules for a client_id URL."""
    if len(url) > MAX_URL_CHARS:
        raise _refuse(f"the client_id URL is longer than {MAX_URL_CHARS} characters")
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        raise _refuse("the client_id URL contains a space, a control character or a backslash")
    # The rules below read the URL as written: yarl drops an empty fragment and an empty
    # user ("https://@host/"), and resolves dot segments, before we could see them.
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _refuse("the client_id URL is not a valid URL") from None
    if parts.scheme.lower() != "https":
        raise _refuse("the client_id URL must use https")
    if "@" in parts.netloc:
        raise _refuse("the client_id URL must not contain user information")
    if "#" in url:
        raise _refuse("the client_id URL must not contain a fragment")
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        raise _refuse("the client_id URL must not contain . or .. path segments")
    try:
        target = URL(url)  # an out-of-range or non-numeric port raises here
    except (ValueError, TypeError):
        raise _refuse("the client_id URL is not a valid URL") from None
    if not target.raw_host:
        raise _refuse("the client_id URL has no host")
    if target.raw_user is not None or target.raw_password is not None:
        raise _refuse("the client_id URL must not contain user information")
    if target.raw_path in ("", "/"):
        raise _refuse("the client_id URL must have a path")
    return target


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` names: the IP literal itself, or one lookup's answers."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise _refuse(f"the client_id host {host} could not be resolved") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        if len(sockaddr) == 4 and sockaddr[3]:  # an IPv6 link-local address's scope id
            text = f"{text.partition('%')[0]}%{sockaddr[3]}"
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _refuse(f"the client_id host {host} could not be resolved")
    return addresses


class _PinnedResolver(AbstractResolver):
    """Answers for one host with addresses resolved and checked before the request."""

    def __init__(self, host: str, addresses: list[IPAddress]) -> None:
        self._host = _comparable(host)
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if _comparable(host) != self._host:  # no redirects or proxies: never another host
            raise OSError(f"{host} was not resolved in advance")
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=_NUMERIC,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        pass


def _comparable(host: str) -> str:
    return host.rstrip(".").lower()


async def _get(
    target: URL, addresses: list[IPAddress], context: ssl.SSLContext
) -> tuple[dict[str, Any], int | None]:
    host = target.raw_host
    assert host is not None
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(host, addresses),
        ssl=context,
        use_dns_cache=False,
        force_close=True,
    )
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # no proxy, no .netrc credentials
                auto_decompress=False,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            ) as session,
            session.get(target, allow_redirects=False) as response,
        ):
            _check_response(host, response)
            body = await _read_body(host, response)
            cache_control = response.headers.getall("Cache-Control", [])
    # The cause stays attached for the operator's log; the message only names the kind.
    except aiohttp.ClientConnectorCertificateError as exc:
        raise _refuse(f"the TLS certificate of {host} is not valid for it") from exc
    except aiohttp.ClientSSLError as exc:
        raise _refuse(f"the TLS connection to {host} failed") from exc
    except aiohttp.ClientConnectorError as exc:
        raise _refuse(f"could not connect to {host}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise _refuse(
            f"fetching the client metadata from {host} failed ({type(exc).__name__})"
        ) from exc
    try:
        document = strict_json(body, "the client metadata document")
    except PushgodError as exc:  # its message may quote a key of the body: say less
        if exc.code is ErrorCode.INVALID_JSON_DATA:
            raise _refuse("the client metadata document repeats a key") from None
        raise _refuse("the client metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise _refuse("the client metadata document is not a JSON object")
    return document, parse_max_age(cache_control)


def _check_response(host: str, response: aiohttp.ClientResponse) -> None:
    if 300 <= response.status < 400:
        raise _refuse(f"{host} answered with a redirect (HTTP {response.status}); not followed")
    if response.status != 200:
        raise _refuse(f"{host} answered HTTP {response.status}, not 200")
    media_type, *parameters = response.headers.get("Content-Type", "").split(";")
    if media_type.strip().lower() != "application/json" or not all(
        _is_utf8_charset(parameter) for parameter in parameters
    ):
        raise _refuse(f"{host} did not answer with Content-Type application/json")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise _refuse(f"{host} answered with Content-Encoding {encoding!r}; none was asked for")
    if response.content_length is not None and response.content_length > MAX_DOCUMENT_BYTES:
        raise _refuse(f"the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")


def _is_utf8_charset(parameter: str) -> bool:
    name, _, value = parameter.partition("=")
    return name.strip().lower() == "charset" and value.strip().strip('"').lower() == "utf-8"


async def _read_body(host: str, response: aiohttp.ClientResponse) -> bytes:
    """The body, read until it ends or passes MAX_DOCUMENT_BYTES (refused: stop reading)."""
    body = bytearray()
    while len(body) <= MAX_DOCUMENT_BYTES:
        chunk = await response.content.read(MAX_DOCUMENT_BYTES + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    raise _refuse(f"the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")


def parse_max_age(cache_control: list[str]) -> int | None:
    """Seconds from `Cache-Control: max-age=N` (no-store: 0), None without max-age.

    Other directives are ignored. A malformed max-age counts as 0 and several count as the
    smallest, so a confusing header never makes the document live longer.
    """
    ages: list[int] = []
    for header in cache_control:
        for directive in header.split(","):
            name, _, value = directive.partition("=")
            name = name.strip().lower()
            if name == "no-store":
                return 0
            if name == "max-age":
                ages.append(_delta_seconds(value.strip().strip('"')))
    return min(ages) if ages else None


def _delta_seconds(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        return 0
    if len(value) > len(str(MAX_AGE_CAP_S)):  # int() refuses very long digit strings
        return MAX_AGE_CAP_S
    return min(int(value), MAX_AGE_CAP_S)
