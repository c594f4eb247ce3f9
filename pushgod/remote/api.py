"""One JSON request to a pushgod server, and the message and code of its error envelope.

Every answer of pushgod's API is the `{success, data, error, error_code}` envelope; a
failure here is a `Stop` whose message and code are the server's own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pushgod.remote.errors import Stop

if TYPE_CHECKING:
    import aiohttp


async def request_json(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    """A JSON request that must succeed; anything else stops the command."""
    import aiohttp

    server = url.split("/api/", 1)[0]
    try:
        async with session.request(method, url, **kwargs) as reply:
            text = await reply.text()
            status = reply.status
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise Stop(f"cannot reach {server}: {str(error) or type(error).__name__}") from None
    try:
        envelope = json.loads(text)
    except ValueError:
        raise Stop(f"{server} answered HTTP {status} without JSON; is it pushgod?") from None
    if not isinstance(envelope, dict) or not envelope.get("success"):
        message, code = error_of(envelope, status)
        raise Stop(message, code)
    return envelope


def error_of(envelope: object, status: int) -> tuple[str, str | None]:
    """The message and code of an error envelope (whatever shape it has)."""
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), str):
        code = envelope.get("error_code")
        return envelope["error"], code if isinstance(code, str) else None
    return f"the server answered HTTP {status}", None
