"""How the write use cases run: authorization, op_id keys, the channel and thing they act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.things import ThingState
from pushgod.model.tokens import Scope
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.store import channels as channel_rows
from pushgod.store import ops, states
from pushgod.store.channels import ChannelRow
from pushgod.store.writer import WriteTx


def op_key(kind: str, target: str, op_id: str | None) -> str | None:
    """PushGo's dedupe key: the same op_id on the same kind and target is the same op.

    None when the caller gave no op_id: a generated one is never repeated.
    """
    return f"{kind}:{target}:{op_id}".lower() if op_id else None


Produce = Callable[[WriteTx, ChannelRow], dict[str, Any]]
"""A write of a send route, given the channel as read inside the transaction."""


async def send(
    ctx: Context,
    credentials: Credentials,
    channel_id: str,
    scopes: frozenset[Scope],
    key: str | None,
    at: int,
    produce: Produce,
) -> dict[str, Any]:
    """Authorize a send route and run its write once; returns the reply after the commit.

    A body password verified before is checked against the channel's current hash
    inside the write (one read fewer per send); if the hash changed meanwhile, the
    password is verified afresh and the write runs again.
    """
    known_hash = ctx.auth.remembered_sender(channel_id, credentials)
    if known_hash is not None:
        try:
            return await ctx.store.write(
                lambda tx: write_once(tx, channel_id, key, at, produce, known_hash)
            )
        except PushgodError as error:
            if error.code is not ErrorCode.PASSWORD_MISMATCH:
                raise
    await ctx.auth.channel_access(channel_id, credentials, scopes, sender_route=True)
    return await ctx.store.write(lambda tx: write_once(tx, channel_id, key, at, produce))


def write_once(
    tx: WriteTx,
    channel_id: str,
    key: str | None,
    at: int,
    produce: Produce,
    password_hash: str | None = None,
) -> dict[str, Any]:
    """Run a write of the channel and return its reply; for a repeated op, the first reply.

    The channel is read inside the transaction: it may have been deleted since the
    request was authorized, or (given `password_hash`) its password changed.
    """
    channel = require_channel(tx, channel_id)
    if password_hash is not None and channel.password_hash != password_hash:
        raise PushgodError(ErrorCode.PASSWORD_MISMATCH, "the channel's password has changed")
    if key is not None and (prior := ops.recall(tx, channel_id, key)):
        return prior
    reply = produce(tx, channel)
    if key is not None:
        ops.remember(tx, channel_id, key, reply, at)
    return reply


def require_channel(tx: WriteTx, channel_id: str) -> ChannelRow:
    """Inside the write: the channel may have been deleted since the request was authorized."""
    channel = channel_rows.get(tx.tables, channel_id)
    if channel is None:
        raise PushgodError(ErrorCode.CHANNEL_NOT_FOUND, f"channel {channel_id} does not exist")
    return channel


def require_live_thing(tx: WriteTx, channel_id: str, thing_id: str) -> None:
    """Messages and events may only be scoped to an existing, undeleted Thing."""
    thing = states.get(tx.tables, states.THINGS, channel_id, thing_id)
    if thing is None or thing.state is ThingState.DELETED:
        raise PushgodError(
            ErrorCode.THING_NOT_FOUND, f"thing {thing_id} does not exist in this channel"
        )
