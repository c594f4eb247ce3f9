"""Paired clients: one-time pairing codes, redeeming them, listing and revoking clients."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions

from pushgod.model import sealing
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id
from pushgod.model.times import MINUTE_MS
from pushgod.model.tokens import CHANNEL_SCOPES, Scope, generate_token, token_hash
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.scoping import require_channel
from pushgod.store import clients as client_rows
from pushgod.store import tokens as token_rows
from pushgod.store.clients import ClientRow, PairingCode
from pushgod.store.tokens import TokenRow
from pushgod.store.writer import WriteTx

CODE_LIFETIME_MS = 10 * MINUTE_MS
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 10  # 50 bits: out of reach of guessing at the rate limit in 10 minutes
MAX_NAME_CHARS = 64
PAIRING_REALM = "pairing"
"""Failed redemptions are limited per address alone: a code does not name its channel."""


def normalize_code(code: str) -> str:
    """Case, dashes and spaces do not matter; O reads as 0 and I or L as 1."""
    text = code.strip().upper().replace("-", "").replace(" ", "")
    return text.translate(str.maketrans("OIL", "011"))


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not 0 < len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise PushgodError(
            ErrorCode.INVALID_FIELD, f"name must be 1-{MAX_NAME_CHARS} printable characters"
        )
    return name


def check_public_key(text: object) -> str:
    """A client's X25519 public key: 32 bytes, base64url, and one libsodium can seal to."""
    try:
        key = sealing.b64decode(text, "public_key", sealing.PUBLIC_KEY_BYTES)
        sodium.crypto_box_seal(b"\0" * sealing.KEY_BYTES, key)
    except (PushgodError, nacl.exceptions.CryptoError):
        raise PushgodError(
            ErrorCode.INVALID_PUBLIC_KEY,
            "public_key must be an X25519 public key: 32 bytes in base64url",
        ) from None
    return sealing.b64encode(key)


class Clients:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._redeeming: dict[str, int] = {}

    async def pairing_code(
        self, actor: Credentials | None, channel_id: str, name: str | None = None
    ) -> tuple[str, int]:
        """A new one-time pairing code for the channel and when it expires."""
        self._ctx.auth.admin(actor)
        channel_id = parse_channel_id(channel_id)
        name = check_name(name)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        now = self._ctx.clock()
        row = PairingCode(code_hash(code), channel_id, name, now, now + CODE_LIFETIME_MS)

        def write(tx: WriteTx) -> None:
            require_channel(tx, channel_id)
            client_rows.insert_code(tx, row)

        await self._ctx.store.write(write)
        return format_code(code), row.expires_at

    async def redeem(
        self, address: str, code: str, public_key: object, name: str | None = None
    ) -> dict[str, Any]:
        """Pair a client: the code's channel, a new subscribe token, and the client id.

        A code works once. Failed attempts are limited per address like wrong passwords,
        counting attempts still in flight, so codes cannot be guessed in parallel either.
        """
        key = check_public_key(public_key)
        name = check_name(name)
        limited = (address, PAIRING_REALM)
        self._ctx.passwords.check_limit(limited, self._redeeming.get(address, 0))
        self._redeeming[address] = self._redeeming.get(address, 0) + 1
        now = self._ctx.clock()
        token = generate_token()

        def write(tx: WriteTx) -> ClientRow | None:
            pairing = client_rows.take_code(tx, code_hash(code))
            if pairing is None or pairing.expires_at <= now:
                return None
            if len(client_rows.for_channel(tx.tables, pairing.channel_id)) >= (
                sealing.MAX_RECIPIENTS
            ):
                raise PushgodError(
                    ErrorCode.CLIENT_LIMIT_REACHED,
                    f"a channel pairs at most {sealing.MAX_RECIPIENTS} clients; revoke one",
                )
            client = ClientRow(
                id=secrets.token_hex(8),
                channel_id=pairing.channel_id,
                name=name or pairing.name or "client",
                public_key=key,
                created_at=now,
            )
            token_rows.insert(
                tx,
                TokenRow(
                    id=client.id,
                    hash=token_hash(token),
                    channel_id=client.channel_id,
                    scopes=Scope.SUBSCRIBE.value,
                    label=f"client {client.name}",
                    created_at=now,
                    expires_at=None,
                    last_used_at=None,
                ),
            )
            client_rows.insert(tx, client)
            return client

        try:
            client = await self._ctx.store.write(write)
        finally:
            self._redeeming[address] -= 1
            if not self._redeeming[address]:
                del self._redeeming[address]
        if client is None:
            self._ctx.passwords.record_failure(limited)
            raise PushgodError(
                ErrorCode.PAIRING_CODE_INVALID, "the pairing code is wrong, used or expired"
            )
        return {
            "client_id": client.id,
            "channel_id": client.channel_id,
            "name": client.name,
            "token": token,
            "scopes": [Scope.SUBSCRIBE.value],
        }

    def list(self, actor: Credentials | None, channel_id: str | None = None) -> list[ClientRow]:
        self._ctx.auth.admin(actor)
        if channel_id is not None:
            channel_id = parse_channel_id(channel_id)
        return client_rows.list_all(self._ctx.store.tables, channel_id)

    async def revoke(self, actor: Credentials | None, client_id: str) -> None:
        """Remove the client and its token: its streams end now, and nothing is sealed
        for it any more."""
        self._ctx.auth.admin(actor)

        if not await self._ctx.store.write(lambda tx: client_rows.delete(tx, client_id)):
            raise PushgodError(ErrorCode.CLIENT_NOT_FOUND, f"client {client_id} does not exist")
        self._ctx.hub.access_changed()

    async def keys(self, credentials: Credentials, channel_id: str) -> dict[str, Any]:
        """The channel's sealing policy and its clients' public keys, for senders that
        seal themselves."""
        channel = await self._ctx.auth.channel_access(channel_id, credentials, CHANNEL_SCOPES)
        clients = client_rows.for_channel(self._ctx.store.tables, channel.id)
        return {
            "channel_id": channel.id,
            "e2ee": channel.e2ee,
            "clients": [
                {"client_id": c.id, "public_key": c.public_key, "created_at": c.created_at}
                for c in clients
            ],
        }
