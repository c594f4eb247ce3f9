"""Where a stream starts: `since=` and `Last-Event-ID`, and which item types it carries."""

from __future__ import annotations

from dataclasses import dataclass

from pushgod.model.changes import ChangeKind
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.times import parse_duration_ms, parse_timestamp

SEQ_BELOW = 1_000_000_000
"""Integers below this are sequence numbers; from it on, unix timestamps (s or ms)."""

STREAM_KINDS = frozenset({ChangeKind.MESSAGE, ChangeKind.EVENT, ChangeKind.THING})


@dataclass(frozen=True, slots=True)
class Since:
    """The replay before live items: those after `after_seq` (and at or after `at_ms`);
    only the newest one with `latest`; none at all without `replay`."""

    after_seq: int = 0
    at_ms: int | None = None
    latest: bool = False
    replay: bool = True


LIVE_ONLY = Since(replay=False)


def parse_since(text: str | None, now_ms: int) -> Since:
    """`all`, `latest`, a sequence number, a unix timestamp or a duration back from now.

    Absent or empty means live items only, as in ntfy.
    """
    if text is None or text == "":
        return LIVE_ONLY
    if text == "all":
        return Since()
    if text == "latest":
        return Since(latest=True)
    try:
        if text.isascii() and text.isdigit() and len(text) <= 16:
            number = int(text)
            if number < SEQ_BELOW:
                return Since(after_seq=number)
            return Since(at_ms=parse_timestamp(number, "since"))
        return Since(at_ms=now_ms - parse_duration_ms(text, "since"))
    except PushgodError:
        pass
    raise PushgodError(
        ErrorCode.INVALID_QUERY,
        "since must be all, latest, a sequence number, a unix timestamp or a duration like 10m",
    )


def parse_kinds(text: str | None) -> frozenset[ChangeKind]:
    """`types=message,event,thing` (any of them); absent means all three."""
    if text is None:
        return STREAM_KINDS
    kinds = set()
    for part in text.split(","):
        try:
            kind = ChangeKind(part.strip())
        except ValueError:
            kind = None
        if kind not in STREAM_KINDS:
            raise PushgodError(
                ErrorCode.INVALID_QUERY,
                "types must be a comma-separated list of message, event and thing",
            )
        kinds.add(kind)
    return frozenset(kinds)
