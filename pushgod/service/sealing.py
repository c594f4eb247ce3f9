"""Sealing at ingest: a channel's policy applied to a request before anything is stored."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any, TypeVar

from pushgod.model import sealing
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import EventIntent
from pushgod.model.messages import MessageIntent
from pushgod.model.sealing import Policy
from pushgod.model.things import ThingIntent
from pushgod.store import clients as client_rows
from pushgod.store.channels import ChannelRow
from pushgod.store.writer import WriteTx

Intent = TypeVar("Intent", MessageIntent, EventIntent, ThingIntent)


@lru_cache(maxsize=256)
def policy(text: str) -> Policy:
    return sealing.parse_policy(text)


def seal_intent(tx: WriteTx, channel: ChannelRow, kind: str, intent: Intent) -> Intent:
    """The intent with the fields its channel seals moved into one more envelope.

    Runs inside the write, so the envelope is sealed to exactly the clients paired
    when it commits; the plaintext of sealed fields never reaches the store.
    """
    if channel.e2ee is None:
        return intent
    given = {name: getattr(intent, name) for name in sealing.SEALABLE[kind]}
    wanted = policy(channel.e2ee).split(kind, given)
    if not wanted:
        return intent
    # What the sender sealed itself is not sealed again; a plain copy of it is dropped.
    chosen = _not_presealed(wanted, intent.sealed)
    replaced: dict[str, Any] = {
        name: sealing.PLACEHOLDERS[kind][name] for name in wanted if name != "attrs"
    }
    if "attrs" in wanted:
        kept = {k: v for k, v in given["attrs"].items() if k not in wanted["attrs"]}
        replaced["attrs"] = kept or None
    if chosen.get("attrs") == {}:
        del chosen["attrs"]
    envelopes: tuple[dict[str, Any], ...] = intent.sealed or ()
    if chosen:
        envelope = sealing.seal(chosen, _recipients(tx, channel), channel.id, kind)
        envelopes = (*envelopes, envelope)
    return dataclasses.replace(intent, **replaced, sealed=envelopes or None)


def _recipients(tx: WriteTx, channel: ChannelRow) -> dict[str, bytes]:
    recipients = {
        client.id: sealing.b64decode(client.public_key, "public_key", sealing.PUBLIC_KEY_BYTES)
        for client in client_rows.for_channel(tx.tables, channel.id)
    }
    if not recipients:
        # Sealed to nobody, the fields would be lost for good: refuse instead.
        raise PushgodError(
            ErrorCode.NO_PAIRED_CLIENTS,
            "this channel seals its messages for paired clients, and none is paired: "
            "pair one (pushgod client pair) or turn sealing off (pushgod channel e2ee --off)",
        )
    return recipients


def _not_presealed(
    given: dict[str, Any], presealed: tuple[dict[str, Any], ...] | None
) -> dict[str, Any]:
    """The fields less those the sender sealed itself."""
    if not presealed:
        return given
    result = {name: value for name, value in given.items() if not sealing.seals(presealed, name)}
    if given.get("attrs"):
        result["attrs"] = {
            key: value
            for key, value in given["attrs"].items()
            if not sealing.seals(presealed, f"attrs.{key}")
        }
    return result
