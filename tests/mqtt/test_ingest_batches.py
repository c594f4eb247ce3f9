"""Device messages written in batches (docs/mqtt.md, "Bursts"): every message applied in
order and accepted or refused on its own, one Thing row and one change per Thing and
batch, the device registry remembered between messages and forgotten when it changes,
and a burst through a real Mosquitto ending committed and retained."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nacl.public
import pytest
from integration.running_bridge import Running, attrs, device

from pushgod.config import Settings
from pushgod.model import sealing
from pushgod.model.changes import Change, ChangeKind
from pushgod.model.errors import PushgodError
from pushgod.model.merge_patch import compose, merge_patch
from pushgod.mqtt.accounts import open_accounts
from pushgod.service import things as things_service
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.devices import Outcomes
from pushgod.service.services import Services
from pushgod.service.things import Things
from pushgod.store import states, writer

GUARD_S = 20.0
"""How long a change may take to show: a failure guard, never a wait."""
ROOT = "pushgod"


def topic(thing_id: str, leaf: str) -> str:
    return f"{ROOT}/things/{thing_id}/in/{leaf}"


def patch_of(message: tuple[str, bytes]) -> dict[str, Any]:
    """The attrs merge-patch a well-formed in/state or in/attr message asks for."""
    name, payload = message
    if name.endswith("/in/state"):
        patch: dict[str, Any] = json.loads(payload)
        return patch
    return {name.rsplit("/", 1)[1]: json.loads(payload) if payload else None}


def codes(outcomes: Outcomes) -> list[str | None]:
    """None for each message applied, else its error code (any other exception: a bug)."""
    return [
        None
        if outcome is None
        else outcome.code.value
        if isinstance(outcome, PushgodError)
        else repr(outcome)
        for outcome in outcomes
    ]


class Home:
    """Services on a temp dir, a channel, and devices registered with the files backend."""

    def __init__(self, settings: Settings, services: Services, accounts_dir: Path) -> None:
        self.settings = replace(settings, mqtt=replace(settings.mqtt, provisioning="files"))
        self.services = services
        self.accounts_dir = accounts_dir
        self.channel_id = ""

    async def channel(self) -> str:
        row, _ = await self.services.channels.create(LOCAL_OPERATOR, "home")
        return row.id

    async def add(self, thing_id: str, channel_id: str, services: Services | None = None) -> None:
        async with open_accounts(self.settings.mqtt, self.accounts_dir) as accounts:
            await (services or self.services).devices.add(
                None, accounts, thing_id, channel_id, create=True
            )

    async def revoke(self, thing_id: str, services: Services | None = None) -> None:
        async with open_accounts(self.settings.mqtt, self.accounts_dir) as accounts:
            await (services or self.services).devices.revoke(None, accounts, thing_id)

    def thing(self, thing_id: str, channel_id: str | None = None) -> dict[str, Any]:
        found = states.get(
            self.services.store.tables, states.THINGS, channel_id or self.channel_id, thing_id
        )
        assert found is not None
        return found.to_json()

    def history(self, thing_id: str, channel_id: str | None = None) -> list[dict[str, Any]]:
        """The Thing's changes, oldest first."""
        return list(
            reversed(
                states.history(
                    self.services.store.tables,
                    states.THINGS,
                    channel_id or self.channel_id,
                    thing_id,
                    limit=1000,
                    before_seq=None,
                )
            )
        )

    def updates(self) -> dict[str, int]:
        listed = self.services.devices.list(None)
        return {row["thing_id"]: row["updates"] for row in listed}


@pytest.fixture
async def home(settings: Settings, services: Services, tmp_path: Path) -> Home:
    made = Home(settings, services, tmp_path / "accounts")
    made.channel_id = await made.channel()
    for thing_id in ("a", "b"):
        await made.add(thing_id, made.channel_id)
    return made


def committed(services: Services) -> list[Change]:
    """Every change the hub publishes from now on, in order."""
    seen: list[Change] = []
    services.hub.subscribe(seen.extend)
    return seen


async def test_a_batch_applies_every_message_in_order(home: Home) -> None:
    batch = [
        (topic("b", "state"), b'{"door": "open", "box": {"x": 1, "y": 2}}'),
        (topic("a", "attr/v"), b"1"),
        (topic("a", "state"), b'{"box": {"p": 1}, "w": true}'),
        (topic("a", "state"), b"[1, 2]"),  # refused alone: not an object
        (topic("b", "attr/door"), b'"closed"'),
        (topic("a", "attr/v"), b"2"),
        (topic("ghost", "attr/v"), b"1"),  # refused alone: no such device
        (topic("a", "state"), b'{"box": {"q": 2, "p": null}, "w": null}'),
        (topic("b", "state"), b'{"box": {"x": null}}'),
    ]
    good = [message for index, message in enumerate(batch) if index not in (3, 6)]
    before = {thing_id: len(home.history(thing_id)) for thing_id in ("a", "b")}
    changes = committed(home.services)

    outcomes = await home.services.devices.ingest(ROOT, batch)

    assert codes(outcomes) == [
        None,
        None,
        None,
        "invalid_json_data",
        None,
        None,
        "device_not_found",
        None,
        None,
    ]
    for thing_id in ("a", "b"):
        mine = [patch_of(m) for m in good if f"/things/{thing_id}/" in m[0]]
        expected: dict[str, Any] = {}
        for patch in mine:
            expected = merge_patch(expected, patch)
        thing = home.thing(thing_id)
        assert thing["attrs"] == expected
        # One change for the batch: the state after its last update, what they set together.
        history = home.history(thing_id)
        assert len(history) == before[thing_id] + 1
        change = history[-1]
        assert change["thing"] == thing
        combined: dict[str, Any] = {}
        for patch in mine:
            combined = compose(combined, patch)
        assert change["update"]["attrs"] == combined
        assert change["update"]["action"] == "update"
    # What the feed carried: those two changes, each where its Thing's last update was.
    assert [(c.kind, c.entity_id) for c in changes] == [
        (ChangeKind.THING, "a"),
        (ChangeKind.THING, "b"),
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert home.updates() == {"a": 4, "b": 3}


async def test_a_message_or_event_in_a_batch_keeps_its_place(home: Home) -> None:
    changes = committed(home.services)
    outcomes = await home.services.devices.ingest(
        ROOT,
        [
            (topic("a", "attr/v"), b"1"),
            (topic("b", "attr/v"), b"1"),
            (topic("a", "event"), b'{"title": "Disk low"}'),
            (topic("a", "attr/v"), b"2"),
            (topic("a", "attr/v"), b"3"),
            (topic("a", "event"), b'{"event_id": "e-1", "close": true}'),  # refused alone
        ],
    )
    assert codes(outcomes) == [None, None, None, None, None, "event_not_found"]
    # Updates before an in/event are written before it, so its change follows theirs;
    # consecutive updates share a change.
    assert [(c.kind, c.entity_id) for c in changes] == [
        (ChangeKind.THING, "a"),
        (ChangeKind.THING, "b"),
        (ChangeKind.MESSAGE, changes[2].entity_id),
        (ChangeKind.THING, "a"),
    ]
    assert changes[2].data["thing_id"] == "a"
    assert changes[0].data["thing"]["attrs"] == {"v": 1}
    assert changes[3].data["thing"]["attrs"] == changes[3].data["update"]["attrs"] == {"v": 3}
    assert home.thing("a")["attrs"] == {"v": 3}
    assert home.updates() == {"a": 4, "b": 1}


async def test_sealed_updates_keep_a_change_each(home: Home) -> None:
    services = home.services
    await services.channels.update(LOCAL_OPERATOR, home.channel_id, e2ee="thing.attrs.secret")
    code, _ = await services.clients.pairing_code(LOCAL_OPERATOR, home.channel_id)
    public_key = bytes(nacl.public.PrivateKey.generate().public_key)
    await services.clients.redeem("127.0.0.1", code, sealing.b64encode(public_key))
    changes = committed(services)
    outcomes = await services.devices.ingest(
        ROOT,
        [
            (topic("a", "attr/secret"), b"1"),
            (topic("a", "attr/plain"), b"2"),
            (topic("a", "attr/plain"), b"3"),
            (topic("a", "attr/secret"), b"4"),
        ],
    )
    assert codes(outcomes) == [None] * 4
    updates = [c.data["update"] for c in changes]
    assert [set(u.get("attrs", {})) for u in updates] == [set(), {"plain"}, set()]
    assert ["sealed" in u for u in updates] == [True, False, True]
    assert updates[1]["attrs"] == {"plain": 3}
    thing = home.thing("a")
    assert thing["attrs"] == {"plain": 3}  # the secret is only in the envelopes
    assert len(thing["sealed"]) == 1  # the newer envelope holds every field of the older


async def test_the_registry_follows_devices_this_process_adds_and_revokes(home: Home) -> None:
    services = home.services
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"1")])) == [None]
    await home.revoke("a")
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"2")])) == [
        "device_not_found"
    ]
    await home.add("a", home.channel_id)
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"3")])) == [None]
    assert home.thing("a")["attrs"] == {"v": 3}

    # A device moves to another channel only with its Thing: the old channel goes.
    await services.channels.delete(LOCAL_OPERATOR, home.channel_id)
    other = await home.channel()
    await home.add("a", other)
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"4")])) == [None]
    assert home.thing("a", other)["attrs"] == {"v": 4}


@pytest.fixture
async def cli(settings: Settings) -> AsyncIterator[Services]:
    """Another process on the same database, as `pushgod device` run beside the daemon."""
    opened = Services(settings)
    opened.open()
    yield opened
    opened.close()


@pytest.fixture
def unhurried_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's writer notices other processes' commits only when it commits itself
    (not also every second), so that a test sees what a message meets before then."""
    monkeypatch.setattr(writer, "EXTERNAL_CHECK_S", 3600.0)


async def test_the_registry_follows_devices_another_process_changes(
    unhurried_writer: None, home: Home, cli: Services
) -> None:
    services = home.services
    forgotten = asyncio.Event()
    services.hub.watch_access(forgotten.set)  # the daemon saw another process's commit
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"1")])) == [None]

    await home.revoke("a", cli)
    # Seen or not yet, the revocation holds: the write reads the registry again.
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"2")])) == [
        "device_not_found"
    ]
    await home.add("a", home.channel_id, cli)
    await home.add("c", home.channel_id, cli)
    # Devices the registry does not remember are looked up, never refused.
    assert codes(
        await services.devices.ingest(
            ROOT, [(topic("a", "attr/v"), b"3"), (topic("c", "attr/v"), b"3")]
        )
    ) == [None, None]
    assert home.thing("a")["attrs"] == home.thing("c")["attrs"] == {"v": 3}
    # That commit showed the writer the other process's, and the registry was dropped:
    # this one remembers a's channel again.
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"3")])) == [None]

    # Moved to another channel (its old one deleted): seen or not yet, a message goes to
    # the channel the device is in now, never to the one remembered, and is not lost.
    forgotten.clear()
    await cli.channels.delete(LOCAL_OPERATOR, home.channel_id)
    row, _ = await cli.channels.create(LOCAL_OPERATOR, "garage")
    await home.add("a", row.id, cli)
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"4")])) == [None]
    async with asyncio.timeout(GUARD_S):
        await forgotten.wait()
    assert codes(await services.devices.ingest(ROOT, [(topic("a", "attr/v"), b"5")])) == [None]
    assert home.thing("a", row.id)["attrs"] == {"v": 5}
    assert [c["thing"]["attrs"]["v"] for c in home.history("a", row.id)[1:]] == [4, 5]


async def test_a_bug_that_fails_a_batch_costs_only_its_own_message(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure outside any one message's write (here, writing b's row) rolls the batch
    back; the batch is then applied one message at a time."""
    await home.add("c", home.channel_id)
    write_row = Things.write_row

    def failing_for_b(self: Things, tx: Any, thing: Any, *rest: Any) -> None:
        if thing.thing_id == "b":
            raise RuntimeError("a bug of ours")
        write_row(self, tx, thing, *rest)

    monkeypatch.setattr(Things, "write_row", failing_for_b)
    batch = [(topic(thing_id, "attr/v"), b"7") for thing_id in ("a", "b", "c")]
    outcomes = await home.services.devices.ingest(ROOT, batch)
    assert codes(outcomes) == [None, "RuntimeError('a bug of ours')", None]
    assert home.thing("a")["attrs"] == home.thing("c")["attrs"] == {"v": 7}
    assert home.thing("b")["attrs"] == {}
    assert home.updates() == {"a": 1, "b": 0, "c": 1}


async def test_the_decoded_states_kept_stay_within_their_budget(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(things_service, "WRITTEN_CACHE_BYTES", 4096)
    things = home.services.things
    for value in range(3):
        large = json.dumps({"blob": f"{value}" * 1500}).encode()
        outcomes = await home.services.devices.ingest(
            ROOT, [(topic("a", "state"), large), (topic("b", "state"), large)]
        )
        assert codes(outcomes) == [None, None]
        assert 0 < things._written_bytes <= 4096
    assert home.thing("a")["attrs"] == home.thing("b")["attrs"] == {"blob": "2" * 1500}


@pytest.mark.parametrize("qos", [0, 1])
async def test_a_burst_through_the_broker_ends_committed_and_retained(
    running: Running, qos: int
) -> None:
    things = ("a", "b", "c")
    per_thing = 200
    sent: dict[str, list[tuple[str, bytes]]] = {thing_id: [] for thing_id in things}
    for thing_id in things:
        for n in range(per_thing):
            if n % 10 == 9:  # a merge-patch now and then, deleting a key another one set
                message = (topic(thing_id, "state"), json.dumps({"n": n, "odd": None}).encode())
            else:
                message = (topic(thing_id, f"attr/{'odd' if n % 2 else 'v'}"), str(n).encode())
            sent[thing_id].append(message)

    clients = [await device(running, thing_id) for thing_id in things]
    async with clients[0], clients[1], clients[2]:
        await asyncio.gather(
            *(
                _publish_all(client, sent[thing_id], qos)
                for client, thing_id in zip(clients, things, strict=True)
            )
        )

    for thing_id in things:
        expected: dict[str, Any] = {}
        for message in sent[thing_id]:
            expected = merge_patch(expected, patch_of(message))
        retained = await running.broker.first(
            f"{ROOT}/things/{thing_id}/state", lambda p, want=expected: attrs(p) == want
        )
        thing = running.thing(thing_id)
        assert thing["attrs"] == expected
        assert json.loads(retained) == thing
    listed = running.services.devices.list(None)
    assert {row["thing_id"]: row["updates"] for row in listed} == dict.fromkeys(things, per_thing)
    assert running.bridge.applied == per_thing * len(things)
    assert running.bridge.dropped == {}


async def _publish_all(client: Any, messages: list[tuple[str, bytes]], qos: int) -> None:
    for name, payload in messages:
        await client.publish(name, payload, qos=qos)
