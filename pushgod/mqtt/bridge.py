"""The MQTT bridge: one connection to the user's broker, kept up for as long as pushgod runs.

Devices' messages go to the service layer like any HTTP request, in batches: what
aiomqtt has queued is written in one transaction (docs/mqtt.md, "Bursts"). A QoS1
message is acknowledged only once its batch is committed (or it was refused), in the
order the messages arrived. A database failure leaves the batch unacknowledged and drops
the connection: the broker delivers it again when the bridge's persistent session
resumes. Changes of Things, from any source, are published by the egress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import peewee
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from pushgod.config import MqttSettings
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.mqtt.egress import Egress
from pushgod.mqtt.tls import tls_context
from pushgod.service.services import Services

log = logging.getLogger(__name__)

RECEIVE_WINDOW = 256
"""QoS1 device messages being written at once; the broker holds back the rest (MQTT v5
Receive Maximum). QoS0 messages are not held back: a QoS0 flood queues in aiomqtt."""
MAX_BATCH = RECEIVE_WINDOW // 2
"""Messages written in one transaction: half the window, so that a second batch is
checked on the event loop while the writer commits the first."""
SESSION_EXPIRY_S = 7 * 86_400
"""How long the broker keeps device messages for pushgod while it is down."""
BACKOFF_S = (0.5, 30.0)
DATABASE_ERRORS = (sqlite3.Error, peewee.DatabaseError)
"""Failures of the database (locked, full, I/O), not of the message: worth a retry."""
DROP_LOG_INTERVAL_S = 60.0


Batch = tuple[asyncio.Task[None], list[aiomqtt.Message]]
"""Messages being applied together, and the task applying them."""


class Bridge:
    def __init__(
        self,
        settings: MqttSettings,
        services: Services,
        on_connection: Callable[[bool], None] = lambda connected: None,
    ) -> None:
        self._settings = settings
        self._services = services
        self._on_connection = on_connection
        self._egress = Egress(settings)
        self._status_topic = f"{settings.root}/status"
        self._ha_status = f"{settings.ha_prefix}/status"
        self._stopping = asyncio.Event()
        self._drops = DropLog()
        self.connected = False
        self.applied = 0
        services.hub.subscribe(self._egress.changed)

    @property
    def dropped(self) -> dict[str, int]:
        return dict(self._drops.counts)

    async def run(self) -> None:
        """Stay connected until `stop`, reconnecting with backoff."""
        delay = BACKOFF_S[0]
        while not self._stopping.is_set():
            try:
                client = self._client()
                # Before connecting: messages queued for our session arrive with CONNACK.
                client._client.manual_ack_set(True)
                async with client:
                    await self._session(client)
                delay = BACKOFF_S[0]
            except aiomqtt.MqttError as error:
                if self.connected:
                    log.warning("lost the MQTT broker: %s", error)
                    delay = BACKOFF_S[0]
                else:
                    log.warning(
                        "cannot connect to the MQTT broker %s:%d: %s; retrying in %.1f s",
                        self._settings.host,
                        self._settings.port,
                        error,
                        delay,
                    )
            except DATABASE_ERRORS as error:
                # The message was not acknowledged: the broker delivers it again once we
                # reconnect. The delay keeps growing while the database keeps failing.
                log.error(
                    "could not store a device message (%s); reconnecting in %.1f s", error, delay
                )
            self._set_connected(False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, BACKOFF_S[1])

    async def stop(self) -> None:
        self._stopping.set()

    def _client(self) -> aiomqtt.Client:
        settings = self._settings
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = SESSION_EXPIRY_S
        connect.ReceiveMaximum = RECEIVE_WINDOW
        return aiomqtt.Client(
            settings.host,
            settings.port,
            username=settings.username or None,
            password=settings.password or None,
            identifier=settings.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(self._status_topic, b"offline", qos=1, retain=True),
            clean_start=False,
            properties=connect,
            keepalive=30,
            timeout=10,
            tls_context=tls_context(settings),
            logger=log,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        root = self._settings.root
        # Retained device topics arrive once, when the subscription is new, not again on
        # every reconnect of the persistent session.
        once = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        topics = [(f"{root}/things/+/in/#", once), (f"{root}/things/+/availability", once)]
        if self._settings.ha_discovery:
            topics.append((self._ha_status, SubscribeOptions(qos=1)))
        client.pending_calls_threshold = RECEIVE_WINDOW
        await client.subscribe(topics)
        await client.publish(self._status_topic, b"online", qos=1, retain=True)
        self._set_connected(True)
        self._egress.resync(self._services.things.every())
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        inflight: deque[Batch] = deque()
        tasks: list[asyncio.Future[Any]] = [
            asyncio.create_task(self._receive(client, inflight, failed)),
            asyncio.create_task(self._egress.run(client)),
            asyncio.create_task(self._stopping.wait()),
        ]
        try:
            done, _ = await asyncio.wait([*tasks, failed], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raises a lost connection (MqttError) or a failed write
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if inflight:  # let accepted writes finish and be acknowledged
                await asyncio.gather(*(task for task, _ in inflight), return_exceptions=True)
                self._settle(client, inflight)
        if self._stopping.is_set():
            await client.publish(self._status_topic, b"offline", qos=1, retain=True)

    async def _receive(
        self, client: aiomqtt.Client, inflight: deque[Batch], failed: asyncio.Future[None]
    ) -> None:
        """Take messages in batches: each written in one transaction, while the next
        batch is received and checked."""
        received = 0  # messages taken whose batch is not finished
        room = asyncio.Event()

        def done(size: int, task: asyncio.Task[None]) -> None:
            nonlocal received
            received -= size
            room.set()
            if not task.cancelled() and task.exception() is not None and not failed.done():
                failed.set_exception(task.exception())  # type: ignore[arg-type]
            self._settle(client, inflight)

        messages = aiter(client.messages)
        # What is queued already is taken from aiomqtt's queue itself (2.x keeps it in
        # `_queue`): its iterator costs a task and a loop turn for every message.
        queued: asyncio.Queue[aiomqtt.Message] = client._queue
        while True:
            while received >= RECEIVE_WINDOW:
                room.clear()
                await room.wait()
            batch = [await anext(messages)]
            limit = min(MAX_BATCH, RECEIVE_WINDOW - received)
            while len(batch) < limit and not queued.empty():
                batch.append(queued.get_nowait())
            received += len(batch)
            task = asyncio.create_task(self._handle(batch))
            inflight.append((task, batch))
            task.add_done_callback(functools.partial(done, len(batch)))

    def _settle(self, client: aiomqtt.Client, inflight: deque[Batch]) -> None:
        """Acknowledge finished batches in arrival order, up to the first unfinished one.

        A batch whose write failed unexpectedly is never acknowledged, nor any after it:
        the connection is about to drop and the broker will deliver them again.
        """
        while inflight and inflight[0][0].done():
            task, batch = inflight[0]
            if task.cancelled() or task.exception() is not None:
                return
            inflight.popleft()
            for message in batch:
                if message.qos > 0:
                    client._client.ack(message.mid, message.qos)

    async def _handle(self, batch: list[aiomqtt.Message]) -> None:
        """Apply a batch of device messages, returning after their commit; republish
        discovery when Home Assistant starts. Refused messages are logged."""
        received: list[tuple[str, bytes]] = []
        for message in batch:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if message.topic.value != self._ha_status:
                received.append((message.topic.value, payload))
            elif payload == b"online":
                self._egress.resync(self._services.things.every())
        if not received:
            return
        internal = PushgodError(ErrorCode.INTERNAL_ERROR, "the message could not be applied")
        try:
            outcomes = await self._services.devices.ingest(self._settings.root, received)
        except DATABASE_ERRORS:
            raise  # not acknowledged; delivered again after the reconnect
        except Exception:
            # A bug of ours, which another delivery would only repeat: drop the messages
            # rather than loop on them, and say where it failed.
            log.exception("mqtt: a batch of %d messages failed", len(received))
            outcomes = [internal] * len(received)
        for (topic, _), outcome in zip(received, outcomes, strict=True):
            if outcome is None:
                self.applied += 1
            elif isinstance(outcome, PushgodError):
                self._drops.note(outcome, topic)
            else:  # a bug of ours that refused this message alone
                log.error("mqtt: a message on %s failed", topic, exc_info=outcome)
                self._drops.note(internal, topic)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if connected:
                log.info(
                    "connected to the MQTT broker %s:%d", self._settings.host, self._settings.port
                )
            self._on_connection(connected)


class DropLog:
    """Counts refused device messages by error code; logs at most one line per code a minute."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def note(self, error: PushgodError, topic: str) -> None:
        code = error.code.value
        self.counts[code] = self.counts.get(code, 0) + 1
        now = time.monotonic()
        if now - self._logged_at.get(code, -DROP_LOG_INTERVAL_S) < DROP_LOG_INTERVAL_S:
            self._unlogged[code] = self._unlogged.get(code, 0) + 1
            return
        self._logged_at[code] = now
        more = self._unlogged.pop(code, 0)
        suffix = f" ({more} more like it since the last report)" if more else ""
        level = logging.ERROR if error.code is ErrorCode.INTERNAL_ERROR else logging.WARNING
        log.log(
            level, "mqtt: dropped a message on %s: %s: %s%s", topic, code, error.message, suffix
        )
