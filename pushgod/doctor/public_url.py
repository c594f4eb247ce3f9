"""server.public_base_url: set, https, and answering from this machine as this pushgod.

"This pushgod" is told by the `instance` /healthz reports (store.instance_id), which the
doctor reads from the database too: another install behind the same name differs.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from pushgod.config import Settings
from pushgod.doctor.report import Check, failed, passed, reason, warned

NAME = "public_url"
HTTPS_FIX = "set server.public_base_url to the https URL assistants use"


def shown(url: str) -> str:
    """The URL without a user name or password in it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


async def public_url_check(settings: Settings, instance: str | None, timeout_s: float) -> Check:
    url = settings.server.public_base_url
    if not url:
        return warned(
            NAME,
            "server.public_base_url is not set: links, pairing codes and the OAuth issuer "
            "follow each request's Host header",
            HTTPS_FIX,
        )
    where = shown(url)
    reach_fix = (
        f"check that pushgod runs and that DNS and the reverse proxy send {where} to it (from "
        "this machine too), or set server.public_base_url to the URL that reaches it"
    )
    try:
        body, status = await _healthz(f"{url}/healthz", timeout_s)
    except aiohttp.ClientConnectorCertificateError as error:
        return failed(
            NAME,
            f"the TLS certificate of {where} is not trusted: {error.certificate_error}",
            "give the reverse proxy a certificate for that name which clients trust "
            "(Let's Encrypt, for example)",
        )
    except aiohttp.ClientSSLError as error:
        return failed(
            NAME,
            f"the TLS handshake with {where} failed: {error.os_error}",
            "check that the reverse proxy serves https on that port",
        )
    except aiohttp.ClientConnectorError as error:
        return failed(NAME, f"nothing answers at {where}: {reason(error.os_error)}", reach_fix)
    except TimeoutError:
        return failed(NAME, f"{where}/healthz did not answer within {timeout_s:g} s", reach_fix)
    except aiohttp.ClientError as error:
        # Not the error's text: aiohttp puts the whole URL in it, a password included.
        return failed(NAME, f"{where}/healthz failed: {type(error).__name__}", reach_fix)
    if status != 200:
        return failed(
            NAME,
            f"{where}/healthz answered HTTP {status}",
            "point the reverse proxy at pushgod's listen address (server.host, server.port)",
        )
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("status") != "ok":
        return failed(NAME, f"{where}/healthz answers, but not as pushgod", reach_fix)
    theirs = data.get("instance")
    if instance is None or theirs is None:
        return warned(
            NAME,
            f"{where} answers as a pushgod, but which one cannot be told (this database "
            "was not read, or that pushgod does not say)",
            "make both readable and up to date, then run the doctor again",
        )
    if theirs != instance:
        return failed(
            NAME,
            f"{where} reaches another pushgod (instance {theirs}; this one is {instance})",
            f"point DNS and the reverse proxy for {where} at this pushgod, or set "
            "server.public_base_url to the URL that reaches it",
        )
    if urlsplit(url).scheme != "https":
        return warned(
            NAME,
            f"{where} answers as this pushgod, but over plain http: passwords and "
            "tokens cross the network readable",
            f"{HTTPS_FIX} (a reverse proxy with a certificate in front of pushgod)",
        )
    return passed(NAME, f"{where} answers as this pushgod (instance {instance})")


async def _healthz(url: str, timeout_s: float) -> tuple[Any, int]:
    """The JSON body (None when it is not JSON) and status of GET `url`."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    # The system's trusted certificates as they are now (SSL_CERT_FILE included), not as
    # aiohttp's shared context loaded them when it was imported.
    tls = ssl.create_default_context()
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, ssl=tls) as reply,
    ):
        try:
            body = await reply.json(content_type=None)
        except ValueError:
            body = None
        return body, reply.status
