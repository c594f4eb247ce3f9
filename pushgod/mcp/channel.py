"""What the claude/channel bridge forwards, and how: the allowlist and the notification.

Pure rules, no I/O: `pushgod mcp-channel` (pushgod/mcp/channel_bridge.py) asks `Allowlist.admits`
about each item its streams deliver and sends `notification(item)` for those it admits.
The notification is Claude Code's channel contract: `notifications/claude/channel` with
`{"content": str, "meta": {str: str}}`; Claude sees the content inside a `<channel ...>` tag
whose attributes are the meta keys (identifier-like keys only: letters, digits, `_`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypedDict

import mcp_types

from pushgod.remote.items import main_part

CAPABILITY: Final = "claude/channel"
METHOD: Final = "notifications/claude/channel"
ANY: Final = "*"
"""In an allowlist: every value. Not a valid id of anything, so it cannot be mistaken for one."""
TYPES: Final = ("message", "event", "thing")
MAX_CONTENT_CHARS: Final = 8000
"""Longer content is cut: a message body is at most a few KiB, but thing attributes can be
large, and every character lands in the session's context."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab, CR, LF
_TAG = re.compile(r"<(/?channel)", re.IGNORECASE)


class ChannelParams(TypedDict):
    content: str
    meta: dict[str, str]


class ChannelNotification(
    mcp_types.Notification[dict[str, Any], Literal["notifications/claude/channel"]]
):
    """`notifications/claude/channel`. Its params stay a plain dict: the SDK's own params
    model would drop `content` and turn `meta` into `_meta` (mcp 2.3.0)."""


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Which items may reach the session. Every list starts empty, and an empty list admits
    nothing, so nothing is forwarded until the user allows it; `*` admits every value."""

    channels: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    things: frozenset[str] = frozenset()

    def admits(self, item: Mapping[str, Any]) -> bool:
        """The item's channel and type are allowed, and so are its severity (messages and
        events have one) and its thing (thing changes, and messages or events with a
        thing_id)."""
        kind = item.get("type")
        if kind not in TYPES or item.get("channel_id") not in self.channels:
            return False
        part = main_part(item)
        checks: list[tuple[frozenset[str], object]] = [(self.types, kind)]
        if part.get("severity") is not None:
            checks.append((self.severities, part.get("severity")))
        if part.get("thing_id") is not None:
            checks.append((self.things, part.get("thing_id")))
        return all(ANY in allowed or value in allowed for allowed, value in checks)

    def gaps(self) -> list[str]:
        """What an empty list keeps out, in words for the user (stderr at start)."""
        if not self.channels or not self.types:
            missing = "--allow-channel" if not self.channels else "--allow-type"
            return [f"nothing will be forwarded to the session: no {missing} was given"]
        gaps = []
        if not self.severities and self.types & {ANY, "message", "event"}:
            gaps.append(
                "no message or event will be forwarded: --allow-severity is empty "
                "(give the levels, or '*' for all)"
            )
        if not self.things:
            gaps.append(
                "nothing about a thing (thing changes, messages or events with a thing_id) "
                "will be forwarded: --allow-thing is empty (give thing ids, or '*' for all)"
            )
        return gaps

    def to_json(self) -> dict[str, list[str]]:
        return {
            "channels": sorted(self.channels),
            "types": sorted(self.types),
            "severities": sorted(self.severities),
            "things": sorted(self.things),
        }


def notification(item: Mapping[str, Any], sealed: bool) -> ChannelNotification:
    params = ChannelParams(content=content(item), meta=meta(item, sealed))
    return ChannelNotification(method=METHOD, params=dict(params))


def content(item: Mapping[str, Any]) -> str:
    """What Claude reads: the title first, then what the item says, one part a line."""
    kind = item.get("type")
    part = main_part(item)
    if kind == "message":
        parts = [part.get("title"), part.get("body"), part.get("url")]
    elif kind == "event":
        head = f"{_plain(part.get('title'))} ({_plain(item.get('action'))})"
        parts = [head, part.get("status"), part.get("message"), part.get("description")]
    else:
        head = _plain(part.get("title") or part.get("thing_id"))
        attrs = part.get("attrs")
        listed = ", ".join(f"{k}={_plain(v)}" for k, v in attrs.items()) if attrs else None
        parts = [f"{head} ({_plain(item.get('action'))}, {_plain(part.get('state'))})", listed]
    text = "\n".join(_plain(value) for value in parts if value not in (None, ""))
    if len(text) > MAX_CONTENT_CHARS:
        text = text[:MAX_CONTENT_CHARS] + " […cut]"
    return text


def meta(item: Mapping[str, Any], sealed: bool) -> dict[str, str]:
    """The `<channel>` tag's attributes: where the item comes from and which one it is."""
    part = main_part(item)
    values: dict[str, object] = {
        "source": "pushgod",
        "channel": item.get("channel_id"),
        "type": item.get("type"),
        "action": item.get("action"),
        "seq": item.get("seq"),
        "severity": part.get("severity"),
        "message_id": part.get("message_id"),
        "event_id": part.get("event_id"),
        "thing_id": part.get("thing_id"),
        "at": _iso(item.get("at")),
        "sealed": "true" if sealed else None,
    }
    return {key: _plain(value)[:200] for key, value in values.items() if value is not None}


def _plain(value: object) -> str:
    """Sender text made safe to embed: no control characters, and no `<channel` that could
    close the tag Claude reads it in and pass the rest off as something else."""
    if isinstance(value, dict | list):
        value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return _TAG.sub(r"&lt;\1", _CONTROL.sub("\ufffd", str(value)))


def _iso(at: object) -> str | None:
    if not isinstance(at, int):
        return None
    return datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="seconds")
