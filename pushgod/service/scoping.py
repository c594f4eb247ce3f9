"""Rules shared by the write use cases: op_id keys, the channel and thing they act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.things import ThingState
from pushgod.store import channels as channel_rows
from pushgod.store import ops, states
from pushgod.store.writer import WriteTx


def op_key(kind: str, target: str, op_id: str | None) -> str | None:
    """PushGo's dedupe key: the same op_id on the same kind and target is the same op.

    None when the caller gave no op_id: a generated one is never repeated.
    """
    return f"{kind}:{target}:{op_id}".lower() if op_id else None


def write_once(
    tx: WriteTx,
    channel_id: str,
    key: str | None,
    at: int,
    produce: Callable[[WriteTx], dict[str, Any]],
) -> dict[str, Any]:
    """Run a write of the channel and return its reply; for a repeated op, the first reply.

    The channel is checked inside the transaction: it may have been deleted since the
    request was authorized.
    """
    require_channel(tx, channel_id)
    if key is not None and (prior := ops.recall(tx, channel_id, key)):
        return prior
    reply = produce(tx)
    if key is not None:
        ops.remember(tx, channel_id, key, reply, at)
    return reply


def require_channel(tx: WriteTx, channel_id: str) -> None:
    """Inside the write: the channel may have been deleted since the request was authorized."""
    if channel_rows.get(tx.tables, channel_id) is None:
        raise PushgodError(ErrorCode.CHANNEL_NOT_FOUND, f"channel {channel_id} does not exist")


def require_live_thing(tx: WriteTx, channel_id: str, thing_id: str) -> None:
    """Messages and events may only be scoped to an existing, undeleted Thing."""
    thing = states.get(tx.tables, states.THINGS, channel_id, thing_id)
    if thing is None or thing.state is ThingState.DELETED:
        raise PushgodError(
            ErrorCode.THING_NOT_FOUND, f"thing {thing_id} does not exist in this channel"
        )
