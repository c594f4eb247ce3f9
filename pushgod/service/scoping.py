"""Rules shared by the write use cases: op_id keys, the channel and thing they act on."""

from __future__ import annotations

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.things import ThingState
from pushgod.store import channels as channel_rows
from pushgod.store import things as thing_rows
from pushgod.store.writer import WriteTx


def op_key(kind: str, target: str, op_id: str) -> str:
    """PushGo's dedupe key: the same op_id on the same kind and target is the same op."""
    return f"{kind}:{target}:{op_id}".lower()


def require_channel(tx: WriteTx, channel_id: str) -> None:
    """Inside the write: the channel may have been deleted since the request was authorized."""
    if channel_rows.get(tx.tables, channel_id) is None:
        raise PushgodError(ErrorCode.CHANNEL_NOT_FOUND, f"channel {channel_id} does not exist")


def require_live_thing(tx: WriteTx, channel_id: str, thing_id: str) -> None:
    """Messages and events may only be scoped to an existing, undeleted Thing."""
    thing = thing_rows.get(tx.tables, channel_id, thing_id)
    if thing is None or thing.state is ThingState.DELETED:
        raise PushgodError(
            ErrorCode.THING_NOT_FOUND, f"thing {thing_id} does not exist in this channel"
        )
