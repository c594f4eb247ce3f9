"""Stream items: their sealed parts opened with a paired identity, and reading their fields.

An item of a channel's stream is about one message, event or thing (`main_part`); a sealed
part carries placeholders and envelopes that only a paired client's key opens (docs/e2ee.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pushgod.remote.errors import say
from pushgod.remote.identity import Identity

OBJECTS = ("message", "event", "thing", "update")
"""The parts of a stream item that may carry `sealed` envelopes (docs/e2ee.md)."""


def open_item(item: dict[str, Any], identity: Identity) -> tuple[dict[str, Any], list[str], bool]:
    """The item with its sealed parts opened: (item, errors, whether some stay sealed).

    A part any of whose envelopes fails to open keeps its placeholders and `sealed`
    (never part of its plaintext); the error says why.
    """
    from pushgod.model import sealing
    from pushgod.model.errors import PushgodError

    result = dict(item)
    errors: list[str] = []
    still_sealed = False
    kind = str(item.get("type"))
    parts = [key for key in OBJECTS if isinstance(item.get(key), dict)]
    holders: list[tuple[str | None, dict[str, Any]]] = [(key, item[key]) for key in parts]
    if not holders:
        holders = [(None, item)]  # sealed at the top level, should a server send it so
    for key, part in holders:
        envelopes = part.get("sealed")
        if not envelopes:
            continue
        if identity.secret_key is None or identity.public_key is None:
            still_sealed = True
            continue
        try:
            if not isinstance(envelopes, list):
                raise TypeError("sealed is not a list")
            opened = [
                sealing.open_envelope(
                    envelope,
                    identity.client_id or "",
                    identity.secret_key,
                    identity.public_key,
                    str(item.get("channel_id")),
                    kind,
                )
                for envelope in envelopes
            ]
        except (PushgodError, AttributeError, TypeError, KeyError, ValueError) as error:
            still_sealed = True
            reason = error.message if isinstance(error, PushgodError) else "malformed envelope"
            errors.append(reason)
            continue
        revealed = sealing.reveal(part, opened)
        if key is None:
            result = revealed
        else:
            result[key] = revealed
    return result, errors, still_sealed


def reveal(item: dict[str, Any], identity: Identity) -> tuple[dict[str, Any], bool, bool]:
    """`open_item`, saying on stderr why an item failed to open: (item, sealed, failed)."""
    revealed, errors, sealed = open_item(item, identity)
    if errors:  # one line per item, though its state and its update may both fail
        reasons = "; ".join(dict.fromkeys(errors))
        say(
            f"seq {item.get('seq')}: could not decrypt (decryption_failed): {reasons}; shown sealed"
        )
    return revealed, sealed, bool(errors)


def main_part(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The message, event or thing an item is about (its state after the change)."""
    part = item.get(str(item.get("type")))
    return part if isinstance(part, dict) else item


def text(value: object) -> str:
    """One line of terminal-safe text: no control characters from the sender."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    value = " ⏎ ".join(value.splitlines())
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
