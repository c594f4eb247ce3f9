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
