"""What pushgod publishes: each Thing's canonical state and its Home Assistant discovery.

Every committed Thing change, from any source, lands here through the hub. Changes are
coalesced per Thing (only the newest state of a burst is published, so each Thing's
final state is always right) and published retained; on every connect the bridge
republishes all Things, so a broker that lost its retained messages gets them back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

from pushgod import __version__
from pushgod.config import MqttSettings
from pushgod.model import homeassistant
from pushgod.model.changes import Change, ChangeKind
from pushgod.model.things import Thing, ThingState

PUBLISH_WINDOW = 64
"""QoS1 publishes in flight at once: one round trip each would cap the rate at ~4,000/s."""


class Egress:
    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._pending: dict[str, Thing] = {}
        self._wake = asyncio.Event()
        self._discovery: dict[str, bytes] = {}
        self.published = 0

    def state_topic(self, thing_id: str) -> str:
        return f"{self._settings.root}/things/{thing_id}/state"

    def changed(self, changes: list[Change]) -> None:
        """Hub subscriber: note the newest state of each changed Thing."""
        for change in changes:
            if change.kind is ChangeKind.THING:
                thing = Thing.from_json(change.data["thing"])
                self._pending.pop(thing.thing_id, None)  # keep the dict in change order
                self._pending[thing.thing_id] = thing
                self._wake.set()

    def resync(self, things: list[Thing]) -> None:
        """Republish every Thing and its discovery (after a connect, or HA's restart)."""
        self._discovery.clear()
        for thing in things:
            self._pending.setdefault(thing.thing_id, thing)
        self._wake.set()

    async def run(self, client: aiomqtt.Client) -> None:
        """Publish pending states until cancelled; a failed publish stays pending."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = list(self._pending.values())[:PUBLISH_WINDOW]
                await asyncio.gather(*(self._publish(client, thing) for thing in batch))
                for thing in batch:
                    if self._pending.get(thing.thing_id) is thing:
                        del self._pending[thing.thing_id]
                self.published += len(batch)

    async def _publish(self, client: aiomqtt.Client, thing: Thing) -> None:
        deleted = thing.state is ThingState.DELETED
        state = b"" if deleted else _encode(thing.to_json())
        await client.publish(self.state_topic(thing.thing_id), state, qos=1, retain=True)
        if not self._settings.ha_discovery:
            return
        topic, config = homeassistant.discovery(
            thing,
            root=self._settings.root,
            prefix=self._settings.ha_prefix,
            origin_version=__version__,
        )
        previous = self._discovery.get(thing.thing_id)
        if previous != config:
            if previous and (interim := homeassistant.retired(previous, config)):
                await client.publish(topic, interim, qos=1, retain=True)
            await client.publish(topic, config, qos=1, retain=True)
            self._discovery[thing.thing_id] = config


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
