"""The change feed: one row per committed entity change, numbered by a monotonic sequence."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    MESSAGE = "message"
    EVENT = "event"
    THING = "thing"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class Change:
    """A committed change: what changed, how, and the item as readers see it afterwards."""

    seq: int
    channel_id: str
    kind: ChangeKind
    entity_id: str
    action: str
    at: int
    data: dict[str, Any]


def stream_item(change: Change) -> dict[str, Any]:
    """A change as streams carry it: its sequence number, type, action and time, then the
    message, or the event or thing state after the change with the update applied."""
    payload = {"message": change.data} if change.kind is ChangeKind.MESSAGE else change.data
    return {
        "seq": change.seq,
        "type": change.kind.value,
        "action": change.action,
        "at": change.at,
        "channel_id": change.channel_id,
        **payload,
    }
