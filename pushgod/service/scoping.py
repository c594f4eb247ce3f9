"""Rules shared by the write use cases: op_id idempotency keys and thing scoping."""

from __future__ import annotations

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.things import ThingState
from pushgod.store import things as thing_rows
from pushgod.store.writer import WriteTx


def op_key(kind: str, target: str, op_id: str) -> str:
    """PushGo's dedupe key: the same op_id on the same kind and target is the same op."""
    return f"{kind}:{target}:{op_id}".lower()


def require_live_thing(tx: WriteTx, channel_id: str, thing_id: str) -> None:
    """Messages and events may only be scoped to an existing, undeleted Thing."""
    thing = thing_rows.get(tx.tables, channel_id, thing_id)
    if thing is None or thing.state is ThingState.DELETED:
        raise PushgodError(
            ErrorCode.THING_NOT_FOUND, f"thing {thing_id} does not exist in this channel"
        )
