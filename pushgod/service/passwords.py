"""Channel passwords: argon2id at rest, a verification cache, and a limit on failures.

argon2id costs tens of milliseconds (hundreds on a Raspberry Pi), which would cap a
busy channel at a few dozen sends a second. So a successful verification is remembered,
keyed by a MAC (keyed BLAKE2b) of channel id and password under a per-process secret,
together with the hash it was checked against: when the stored hash changes, the memory
no longer matches and the new password is checked afresh. Hashing runs in a small thread pool
behind a bounded queue, and failures are counted per client address and channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import nacl.exceptions
import nacl.pwhash

from pushgod.model.errors import ErrorCode, PushgodError

OPSLIMIT = 3
MEMLIMIT = 32 * 1024 * 1024
"""argon2id t=3, 32 MiB: ~35 ms here, a few hundred on a Pi 4, 32 MiB per thread."""

CACHE_ENTRIES = 10_000
QUEUE_PER_THREAD = 8
TRACKED_CLIENTS = 10_000

T = TypeVar("T")


class Passwords:
    def __init__(self, threads: int, failed_limit: int, window_ms: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pushgod.argon2")
        self._slots = asyncio.Semaphore(threads * QUEUE_PER_THREAD)
        self._secret = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._pending: dict[tuple[bytes, str], asyncio.Future[bool]] = {}
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._guessing: dict[tuple[str, str], set[tuple[bytes, str]]] = {}
        self._failed_limit = failed_limit
        self._window_s = window_ms / 1000

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def hash(self, password: str) -> str:
        return await self._run(_hash, password)

    async def verify(self, channel_id: str, stored_hash: str, password: str, address: str) -> None:
        """Pass silently, or raise password_mismatch, rate_limited or server_busy.

        A password already verified against this hash always passes, so failures
        from the same address cannot lock out a sender that knows the password.
        Otherwise the limit counts the failures in the window plus the distinct
        passwords being checked for this client right now, so guesses sent all at
        once are limited as well as guesses sent one after another.
        """
        key = self._key(channel_id, password)
        if self._verified.get(key) == stored_hash:
            self._verified.move_to_end(key)
            return
        client = (address, channel_id)
        # Join a check already running, but only one against this same hash: one that
        # began before a password change would let the old password in afterwards.
        check = (key, stored_hash)
        guessing = self._guessing.setdefault(client, set())
        if check not in guessing:
            self.check_limit(client, len(guessing))
        guessing.add(check)
        pending = self._pending.get(check)
        if pending is None:
            pending = asyncio.ensure_future(self._run(_verify, stored_hash, password))
            self._pending[check] = pending
            pending.add_done_callback(lambda _: self._pending.pop(check, None))
        try:
            matches = await asyncio.shield(pending)
        finally:
            guessing.discard(check)
            if not guessing:
                self._guessing.pop(client, None)
        if matches:
            self._verified[key] = stored_hash
            if len(self._verified) > CACHE_ENTRIES:
                self._verified.popitem(last=False)
            return
        self.record_failure(client)
        raise PushgodError(ErrorCode.PASSWORD_MISMATCH, "the password does not match the channel")

    def remembered(self, channel_id: str, password: str) -> str | None:
        """The stored hash this password was last verified against, if it ever was."""
        return self._verified.get(self._key(channel_id, password))

    def _key(self, channel_id: str, password: str) -> bytes:
        # Keyed BLAKE2b is a MAC, like HMAC; unlike hmac.digest, which releases the GIL
        # on every call and so waits out the writer thread (milliseconds under load),
        # it keeps the GIL for short inputs.
        return hashlib.blake2b(
            f"{channel_id}\0{password}".encode(), key=self._secret, digest_size=32
        ).digest()

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        if self._slots.locked():
            raise PushgodError(
                ErrorCode.SERVER_BUSY, "too many password checks in progress", retry_after=1
            )
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)

    def check_limit(self, client: tuple[str, str], in_flight: int) -> None:
        """Raise rate_limited when `client` (address, realm) failed too often lately,
        counting the guesses it has in flight as failures."""
        failures = self._failures.get(client, deque())
        now = time.monotonic()
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if len(failures) + in_flight >= self._failed_limit:
            wait = math.ceil(failures[0] + self._window_s - now) if failures else 1
            raise PushgodError(
                ErrorCode.RATE_LIMITED,
                "too many failed attempts from your address; try again later",
                retry_after=max(wait, 1),
            )

    def record_failure(self, client: tuple[str, str]) -> None:
        if len(self._failures) >= TRACKED_CLIENTS:
            cutoff = time.monotonic() - self._window_s
            for client in [c for c, f in self._failures.items() if not f or f[-1] <= cutoff]:
                del self._failures[client]
        failures = self._failures.setdefault(client, deque())
        failures.append(time.monotonic())


def _hash(password: str) -> str:
    hashed: bytes = nacl.pwhash.argon2id.str(
        password.encode(), opslimit=OPSLIMIT, memlimit=MEMLIMIT
    )
    return hashed.decode()


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(stored_hash.encode(), password.encode()))
    except nacl.exceptions.InvalidkeyError:
        return False
