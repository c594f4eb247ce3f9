"""Devices: MQTT accounts confined to one Thing each, and what they send.

A device's broker account is provisioned by `BrokerAccounts` (mqtt/accounts.py); the
registry here says which Thing, and so which channel, each account may update. Device
input takes the same parsers and the same writes as HTTP: the broker authenticated the
device and confines it to its Thing's topics, and this registry names its channel.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from pushgod.model.devices import (
    MAX_PAYLOAD_BYTES,
    EventRequest,
    Inbound,
    check_device_id,
    device_event,
    parse_topic,
    thing_update,
)
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import EventAction, parse_event
from pushgod.model.ids import parse_channel_id
from pushgod.model.things import ThingAction, ThingIntent, ThingState, parse_thing
from pushgod.service import scoping
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.events import Events
from pushgod.service.messages import Messages
from pushgod.service.things import Things
from pushgod.store import devices as device_rows
from pushgod.store import states
from pushgod.store.channels import ChannelRow
from pushgod.store.devices import DeviceRow
from pushgod.store.writer import WriteTx

log = logging.getLogger(__name__)


class BrokerAccounts(Protocol):
    """Where device accounts live on the broker: dynamic security, or files."""

    mode: str

    def password_hash(self, password: str) -> str | None:
        """What the registry keeps to rebuild the broker's files; None when it keeps none."""

    async def grant(self, thing_id: str, password: str, devices: list[DeviceRow]) -> None:
        """Create the account, or give it a new password and end its sessions."""

    async def revoke(self, thing_id: str, devices: list[DeviceRow]) -> None:
        """Remove the account and end its sessions; `devices` are the ones that remain."""


Outcome = Exception | None
"""What became of a device message: None when applied, else why it was refused (a
PushgodError, or another exception: a bug of ours). A refused message changed nothing."""
Outcomes = list[Outcome]


@dataclass(frozen=True, slots=True)
class _Input:
    """A device message checked on the event loop, to be written by the writer."""

    topic: str
    payload: bytes
    thing_id: str
    channel_id: str
    now: int
    thing: ThingIntent | None
    """A Thing update, or None for an `in/event`, written by `produce`."""
    produce: scoping.Produce | None


Inputs = list[tuple[int, _Input]]
"""Checked messages, each with its index in the batch."""
Refused = list[tuple[int, Exception]]
"""Messages the write refused, by index in the batch, with the error."""


class Devices:
    def __init__(self, ctx: Context, things: Things, events: Events, messages: Messages) -> None:
        self._ctx = ctx
        self._things = things
        self._events = events
        self._messages = messages
        self._registry: dict[str, str] = {}
        """thing_id -> channel_id of devices seen lately, so that a device message costs
        no registry read. Entries go when this process adds or revokes a device, and all
        of them when another process (the CLI) commits anything; the write checks the
        registry again, so an entry that is out of date never misroutes a message."""
        ctx.hub.watch_access(self._registry.clear)

    def list(
        self, actor: Credentials | None, channel_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every device with its Thing's availability and last-seen time."""
        self._ctx.auth.admin(actor)
        if channel_id is not None:
            channel_id = parse_channel_id(channel_id)
        tables = self._ctx.store.tables
        result = []
        for row in device_rows.list_all(tables, channel_id):
            thing = states.get(tables, states.THINGS, row.channel_id, row.thing_id)
            result.append(
                {
                    "thing_id": row.thing_id,
                    "channel_id": row.channel_id,
                    "provisioning": row.provisioning,
                    "created_at": row.created_at,
                    "rotated_at": row.rotated_at,
                    "updates": row.updates,
                    "availability": thing.availability if thing else None,
                    "last_seen_at": thing.last_seen_at if thing else None,
                    "thing_state": thing.state.value if thing else None,
                }
            )
        return result

    async def add(
        self,
        actor: Credentials | None,
        accounts: BrokerAccounts,
        thing_id: str,
        channel_id: str,
        *,
        create: bool,
    ) -> tuple[DeviceRow, str]:
        """Register a device for a Thing (created first with `create`) and give it a broker
        account; returns the row and the account's password, shown only this once."""
        self._ctx.auth.admin(actor)
        check_device_id(thing_id)
        channel_id = parse_channel_id(channel_id)
        tables = self._ctx.store.tables
        self._ctx.auth.channel(channel_id)
        if device_rows.thing_elsewhere(tables, thing_id, channel_id):
            raise PushgodError(
                ErrorCode.DEVICE_EXISTS,
                f"another channel has a thing {thing_id}; device topics need a unique id",
            )
        now = self._ctx.clock()
        password = secrets.token_urlsafe(24)
        row = DeviceRow(
            thing_id, channel_id, accounts.mode, accounts.password_hash(password), now, None, 0
        )
        _, create_intent = parse_thing(
            ThingAction.CREATE, {"channel_id": channel_id, "observed_at": now, "title": thing_id}
        )
        create_thing = self._things.producer(create_intent, now, new_id=thing_id)

        def register(tx: WriteTx, channel: ChannelRow) -> dict[str, Any]:
            if device_rows.get(tx.tables, thing_id) is not None:
                raise PushgodError(ErrorCode.DEVICE_EXISTS, f"device {thing_id} already exists")
            thing = states.get(tx.tables, states.THINGS, channel_id, thing_id)
            if thing is None and not create:
                raise PushgodError(
                    ErrorCode.THING_NOT_FOUND,
                    f"thing {thing_id} does not exist in this channel (add --create)",
                )
            if thing is not None and thing.state is ThingState.DELETED:
                raise PushgodError(ErrorCode.THING_DELETED, f"thing {thing_id} is deleted")
            if thing is None:
                create_thing(tx, channel)
            device_rows.insert(tx, row)
            return {}

        await self._ctx.store.write(
            lambda tx: scoping.write_once(tx, channel_id, None, now, register)
        )
        self._registry.pop(thing_id, None)
        try:
            await accounts.grant(thing_id, password, device_rows.list_all(tables))
        except BaseException:
            await self._ctx.store.write(lambda tx: device_rows.delete(tx, thing_id))
            raise
        return row, password

    async def rotate(
        self, actor: Credentials | None, accounts: BrokerAccounts, thing_id: str
    ) -> str:
        """A new password for the device's account; its open sessions end."""
        self._ctx.auth.admin(actor)
        row = self._existing(thing_id)
        password = secrets.token_urlsafe(24)
        now = self._ctx.clock()
        digest = accounts.password_hash(password)
        await self._ctx.store.write(lambda tx: device_rows.set_password(tx, thing_id, digest, now))
        await accounts.grant(row.thing_id, password, device_rows.list_all(self._ctx.store.tables))
        return password

    async def revoke(
        self, actor: Credentials | None, accounts: BrokerAccounts, thing_id: str
    ) -> None:
        """Remove the device and its broker account; its Thing stays."""
        self._ctx.auth.admin(actor)
        self._existing(thing_id)
        await self._ctx.store.write(lambda tx: device_rows.delete(tx, thing_id))
        self._registry.pop(thing_id, None)
        await accounts.revoke(thing_id, device_rows.list_all(self._ctx.store.tables))

    def _existing(self, thing_id: str) -> DeviceRow:
        row = device_rows.get(self._ctx.store.tables, thing_id)
        if row is None:
            raise PushgodError(ErrorCode.DEVICE_NOT_FOUND, f"there is no device {thing_id}")
        return row

    async def ingest(self, root: str, messages: Sequence[tuple[str, bytes]]) -> Outcomes:
        """Apply messages devices published, as (topic, payload), in order and in one
        transaction; returns after the commit what became of each.

        Raises when the database fails, and then nothing was written. Nothing awaits
        before the write is queued, so batches are written in the order they arrive.
        """
        outcomes: Outcomes = [None] * len(messages)
        inputs: Inputs = []
        for index, (topic, payload) in enumerate(messages):
            try:
                inputs.append((index, self._parse(root, topic, payload)))
            except sqlite3.Error:
                raise
            except Exception as error:  # refused, or a bug of ours: this message alone
                outcomes[index] = error
        if inputs:
            refused, stale = await self._ctx.store.write(lambda tx: self._write(tx, root, inputs))
            for thing_id in stale:
                self._registry.pop(thing_id, None)
            for at, reason in refused:
                outcomes[at] = reason
        return outcomes

    def _parse(
        self, root: str, topic: str, payload: bytes, channel_id: str | None = None
    ) -> _Input:
        """Check a message and turn it into its write for the device's channel (by
        default, as the registry was last read); raises PushgodError if it is refused."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PushgodError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"payloads are limited to {MAX_PAYLOAD_BYTES} bytes"
            )
        parsed = parse_topic(root, topic)
        channel_id = channel_id or self._channel_of(parsed.thing_id)
        now = self._ctx.clock()
        if parsed.kind is not Inbound.EVENT:
            update = thing_update(parsed, payload, channel_id, now)
            return _Input(topic, payload, parsed.thing_id, channel_id, now, update, None)
        request = device_event(parsed, payload, channel_id, now)
        if isinstance(request, EventRequest):
            produce = self._event_producer(parsed.thing_id, request, now)
        else:
            produce = self._messages.producer(request, now)
        return _Input(topic, payload, parsed.thing_id, channel_id, now, None, produce)

    def _channel_of(self, thing_id: str) -> str:
        """The device's channel, from the registry as last read; the write checks it again."""
        channel_id = self._registry.get(thing_id)
        if channel_id is None:
            row = device_rows.get(self._ctx.store.tables, thing_id)
            if row is None:  # not remembered: a device added later is found at once
                raise PushgodError(ErrorCode.DEVICE_NOT_FOUND, f"there is no device {thing_id}")
            channel_id = self._registry[thing_id] = row.channel_id
        return channel_id

    def _write(self, tx: WriteTx, root: str, inputs: Inputs) -> tuple[Refused, set[str]]:
        """On the writer: apply the inputs in order; returns the refused ones with their
        error, and the devices whose registry entry was out of date.

        Should a bug of ours fail the batch outside any one message's write, the batch
        is rolled back and applied again one message at a time, so that the bug costs
        only the messages that meet it.
        """
        try:
            return tx.isolated(partial(self._apply, tx, root, inputs))
        except sqlite3.Error:
            raise
        except Exception:
            if len(inputs) == 1:
                raise
            log.exception(
                "a batch of %d device messages failed; applying them one by one", len(inputs)
            )
        refused: Refused = []
        stale: set[str] = set()
        for each in inputs:
            try:
                one_refused, one_stale = tx.isolated(partial(self._apply, tx, root, [each]))
            except sqlite3.Error:
                raise
            except Exception as error:
                one_refused, one_stale = [(each[0], error)], set()
            refused += one_refused
            stale |= one_stale
        return refused, stale

    def _apply(self, tx: WriteTx, root: str, inputs: Inputs) -> tuple[Refused, set[str]]:
        registered = device_rows.channels_of(tx.tables, {item.thing_id for _, item in inputs})
        channels: dict[str, ChannelRow] = {}
        things = self._things.writes(tx)
        counts: dict[str, int] = {}
        refused: Refused = []
        stale: set[str] = set()
        for index, item in inputs:
            try:
                channel_id = registered.get(item.thing_id)
                if channel_id != item.channel_id:
                    stale.add(item.thing_id)
                    if channel_id is None:
                        raise PushgodError(ErrorCode.DEVICE_NOT_FOUND, "the device was revoked")
                    # Moved to another channel by another process, not noticed yet.
                    item = self._parse(root, item.topic, item.payload, channel_id)
                channel = channels.get(item.channel_id)
                if channel is None:
                    channel = channels[item.channel_id] = scoping.require_channel(
                        tx, item.channel_id
                    )
                if item.thing is not None:
                    things.apply(channel, item.thing, item.now)
                else:
                    assert item.produce is not None
                    things.flush()  # the other writes read Things as stored
                    tx.isolated(partial(item.produce, tx, channel))
                counts[item.thing_id] = counts.get(item.thing_id, 0) + 1
            except sqlite3.Error:
                raise
            except Exception as error:
                refused.append((index, error))
        things.flush()
        device_rows.count_updates(tx, counts)
        return refused, stale

    def _event_producer(self, thing_id: str, request: EventRequest, now: int) -> scoping.Produce:
        """Open the device's named Event if new, else update or close it."""

        def produce(tx: WriteTx, channel: ChannelRow) -> dict[str, Any]:
            current = states.get(tx.tables, states.EVENTS, channel.id, request.event_id)
            if current is not None and current.thing_id != thing_id:
                raise PushgodError(
                    ErrorCode.EVENT_NOT_FOUND, f"event {request.event_id} is not this Thing's"
                )
            body = request.body
            if "severity" not in body:
                body = body | {"severity": current.severity.value if current else "normal"}
            if request.close:
                action = EventAction.CLOSE
            elif current is not None:
                action = EventAction.UPDATE
            else:
                action = EventAction.CREATE
                body = {k: v for k, v in body.items() if k != "event_id"}
            _, intent = parse_event(action, body)
            return self._events.producer(intent, now, new_id=request.event_id)(tx, channel)

        return produce
