"""What pushgod publishes: each Thing's canonical state and its Home Assistant discovery.

Every committed Thing change, from any source, lands here through the hub. Changes are
coalesced per Thing (only the newest state of a burst is published, so each Thing's
final state is always right) and published retained; on every connect the bridge
republishes all Things, so a broker that lost its retained messages gets them back.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from pushgod import __version__
from pushgod.config import MqttSettings
from pushgod.model import homeassistant
from pushgod.model.changes import Change, ChangeKind
from pushgod.model.fields import compact_json
from pushgod.model.things import Thing, ThingState

PUBLISH_WINDOW = 64
"""QoS1 publishes in flight at once: one round trip each would cap the rate at ~4,000/s."""


class Egress:
    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._pending: dict[str, dict[str, Any]] = {}
        """thing_id -> its newest state as JSON, decoded only when it is published."""
        self._wake = asyncio.Event()
        self._discovery: dict[str, bytes] = {}
        self.published = 0

    def state_topic(self, thing_id: str) -> str:
        return f"{self._settings.root}/things/{thing_id}/state"

    def changed(self, changes: list[Change]) -> None:
        """Hub subscriber: note the newest state of each changed Thing."""
        for change in changes:
            if change.kind is ChangeKind.THING:
                self._pending.pop(change.entity_id, None)  # keep the dict in change order
                self._pending[change.entity_id] = change.data["thing"]
                self._wake.set()

    def resync(self, things: list[Thing]) -> None:
        """Republish every Thing and its discovery (after a connect, or HA's restart)."""
        self._discovery.clear()
        for thing in things:
            self._pending.setdefault(thing.thing_id, thing.to_json())
        self._wake.set()

    async def run(self, client: aiomqtt.Client) -> None:
        """Publish pending states until cancelled; a failed publish stays pending."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = list(itertools.islice(self._pending.items(), PUBLISH_WINDOW))
                *first, (topic, payload) = [
                    message for _, state in batch for message in self._messages(state)
                ]
                for message in first:
                    # paho's own publish: aiomqtt's costs a task, an event and a timer
                    # per message (a third of a state's cost with 1,000 Things). The
                    # broker acknowledges in publish order (MQTT 5.0 section 4.6), so
                    # the last acknowledgement, awaited below, confirms them all.
                    info = client._client.publish(*message, qos=1, retain=True)
                    if info.rc != paho.MQTT_ERR_SUCCESS:
                        raise aiomqtt.MqttCodeError(info.rc, "Could not publish a Thing's state")
                await client.publish(topic, payload, qos=1, retain=True)
                for thing_id, state in batch:
                    if self._pending.get(thing_id) is state:
                        del self._pending[thing_id]
                self.published += len(batch)

    def _messages(self, state: dict[str, Any]) -> list[tuple[str, bytes]]:
        """The retained messages that publish a Thing's state: the state, and its
        discovery when that changed."""
        deleted = state["state"] == ThingState.DELETED
        messages = [
            (self.state_topic(state["thing_id"]), b"" if deleted else compact_json(state).encode())
        ]
        if not self._settings.ha_discovery:
            return messages
        thing = Thing.from_json(state)
        topic, config = homeassistant.discovery(
            thing,
            root=self._settings.root,
            prefix=self._settings.ha_prefix,
            origin_version=__version__,
        )
        previous = self._discovery.get(thing.thing_id)
        if previous != config:
            if previous and (interim := homeassistant.retired(previous, config)):
                messages.append((topic, interim))
            messages.append((topic, config))
            # Before it is confirmed: a failed publish ends the connection, and the
            # next one republishes every discovery (`resync`).
            self._discovery[thing.thing_id] = config
        return messages
