"""Following a channel's NDJSON stream: resume after the last item, reconnect with backoff.

The stream is resumed after the last sequence number delivered whenever it ends (a restart
of the daemon, a dropped connection), so nothing is missed or repeated; only a refused
token stops it.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pushgod.remote.api import error_of
from pushgod.remote.errors import Retry, Stop, say
from pushgod.remote.identity import Identity
from pushgod.remote.items import text

if TYPE_CHECKING:
    import aiohttp

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 90.0
"""Streams send a keepalive every 25 s by default: this much silence means a dead link."""
MAX_LINE_BYTES = 8 * 1024 * 1024


class Follower(ABC):
    """Follows one channel's NDJSON stream and hands each new item to `deliver`, in order.

    It starts after `since` (default: the newest item now), reconnects with backoff when
    the stream ends and resumes after the last item delivered, so nothing is missed or
    repeated; only a refused token (Stop) ends `run`. `pushgod listen` and the
    `pushgod mcp-channel` bridge differ only in what `deliver` does.
    """

    stop_hint = ""
    """Said after "listening to channel ..." on the first connection."""

    def __init__(
        self, server: str, channel_id: str, identity: Identity, since: str | None = None
    ) -> None:
        self.server = server
        self.channel_id = channel_id
        self.identity = identity
        self.since = since
        self.last_seq: int | None = None
        self.connects = 0
        self.connected = False
        self.problem: str | None = None
        """Why the last connection ended or failed; None once connected again."""

    @abstractmethod
    async def deliver(self, item: dict[str, Any]) -> None:
        """Handle one new item (it has an int `seq`); its seq counts as done once this returns."""

    @property
    def url(self) -> str:
        return f"{self.server}/api/v1/channels/{self.channel_id}/json"

    async def run(self) -> int:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
        )
        delay = BACKOFF_MIN_S
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                connects, at_least = self.connects, 0.0
                try:
                    problem = await self.follow(session)
                except Retry as retry:
                    problem, at_least = retry.message, retry.wait_s
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    problem = str(error) or type(error).__name__
                if self.connects != connects:
                    delay = BACKOFF_MIN_S  # it was connected: a new outage starts over
                self.problem = problem
                wait = max(delay, at_least)
                say(f"{problem}; reconnecting in {wait:g} s")
                await asyncio.sleep(wait)
                delay = min(wait * 2, BACKOFF_MAX_S)

    async def open(
        self, session: aiohttp.ClientSession, params: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """The stream's response once the server accepted it; errors stop or retry."""
        headers = {"Authorization": f"Bearer {self.identity.token}"}
        try:
            reply = await session.get(self.url, params=params, headers=headers)
        except OSError as error:  # aiohttp's connection errors are OSErrors too
            raise Retry(f"cannot reach {self.server}: {error}") from None
        if reply.status == 200:
            return reply
        try:
            envelope: object = json.loads(await reply.text())
        except ValueError:
            envelope = None
        finally:
            reply.release()
        message, code = error_of(envelope, reply.status)
        if reply.status in (401, 403):
            if self.identity.client_id is None:
                raise Stop(f"the server refused the token: {message}", code)
            raise Stop(
                f"the server refused the token: {message}; the client was revoked, or the "
                "token expired or is not for this channel. Pair again: pushgod client pair "
                "on the server, then pushgod listen --pair CODE",
                code,
            )
        if reply.status == 429 or reply.status >= 500:
            retry_after = reply.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else 0.0
            raise Retry(f"the server answered HTTP {reply.status}: {message}", wait)
        raise Stop(message, code)

    async def position(self, session: aiohttp.ClientSession) -> int:
        """The newest item's sequence number (0 when none): where "only new items" starts,
        so that a connection lost before any item arrives resumes without a gap."""
        reply = await self.open(session, {"since": "latest", "poll": "1"})
        newest = 0
        async with reply:
            async for item in self.lines(reply):
                if isinstance(item.get("seq"), int):
                    newest = max(newest, item["seq"])
        return newest

    async def follow(self, session: aiohttp.ClientSession) -> str:
        """Read the stream until it ends; why it ended. Raises Stop or Retry."""
        if self.last_seq is None and self.since is None:
            self.last_seq = await self.position(session)
        since = str(self.last_seq) if self.last_seq is not None else self.since
        reply = await self.open(session, {"since": since} if since else {})
        async with reply:
            self.connects += 1
            self.connected, self.problem = True, None
            if self.connects == 1:
                say(f"listening to channel {self.channel_id} at {self.server}{self.stop_hint}")
            else:
                say(
                    f"reconnected to {self.server}"
                    + (f"; resuming after seq {since}" if since else "")
                )
            try:
                return await self.read(reply)
            finally:
                self.connected = False

    async def read(self, reply: aiohttp.ClientResponse) -> str:
        """Deliver the stream's new items until it ends; why it ended. Raises Stop or Retry."""
        async for item in self.lines(reply):
            kind = item.get("type")
            if kind == "keepalive":
                continue
            if kind == "closed":
                reason = text(item.get("reason"))
                if reason == "revoked":
                    raise Stop(
                        "the server ended the stream: this client was revoked (or its "
                        "token expired, or the channel was deleted). Pair again: pushgod "
                        "client pair on the server, then pushgod listen --pair CODE",
                        "revoked",
                    )
                return f"the server closed the stream ({reason})"
            seq = item.get("seq")
            if not isinstance(seq, int):
                continue
            if self.last_seq is not None and seq <= self.last_seq:
                continue  # already shown (a replay overlapping what was live)
            await self.deliver(item)
            self.last_seq = seq
        return "the server ended the stream"

    async def lines(self, reply: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        """The JSON objects of an NDJSON body, one per line."""
        buffer = bytearray()
        async for chunk in reply.content.iter_any():
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    say("skipped a line of the stream that is not JSON")
                    continue
                if isinstance(item, dict):
                    yield item
            if len(buffer) > MAX_LINE_BYTES:
                raise Retry(f"a stream line exceeds {MAX_LINE_BYTES} bytes")
