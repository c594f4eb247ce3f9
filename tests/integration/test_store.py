"""The store under the services: group commit, the change feed, the hub, cleanup and retention."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pushgod.config import Settings
from pushgod.model.changes import Change, ChangeKind
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.events import EventAction, advance_event, open_event, parse_event
from pushgod.model.ids import new_hex_id
from pushgod.model.messages import MessageIntent, parse_message
from pushgod.model.things import ThingAction, parse_thing
from pushgod.model.times import DAY_MS, HOUR_MS
from pushgod.service.auth import LOCAL_OPERATOR, Credentials
from pushgod.service.context import now_ms
from pushgod.service.scoping import op_key
from pushgod.service.services import Services
from pushgod.store import messages as message_rows
from pushgod.store import ops, states
from pushgod.store.states import EVENTS
from pushgod.store.writer import Writer, WriteTx

from .support import barrier, counts, settings_with

T = TypeVar("T")
Channel = tuple[str, str]
MESSAGES_PER_CHANNEL = 4


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_with(
        tmp_path,
        PUSHGOD_RETENTION_MESSAGES_PER_CHANNEL=str(MESSAGES_PER_CHANNEL),
        PUSHGOD_RETENTION_MESSAGE_AGE="2d",
        PUSHGOD_RETENTION_CLOSED_EVENT_AGE="1d",
    )


def writer(services: Services) -> Writer:
    """The store's writer thread, for its batch and write counters (no public accessor)."""
    assert services.store._writer is not None
    return services.store._writer


def creds(channel: Channel) -> Credentials:
    return Credentials(address="192.0.2.10", password=channel[1])


def message(channel: Channel, **fields: Any) -> MessageIntent:
    body = {"channel_id": channel[0], "title": "t"} | fields
    return parse_message(body, now_ms())[1]


async def gated(services: Services, starts: Callable[[], list[asyncio.Future[Any]]]) -> list[Any]:
    """Hold the writer with one write, start the given writes so they queue up behind it,
    then let go: they all land in the writer's next batch. Returns their outcomes."""
    loop = asyncio.get_running_loop()
    holding = asyncio.Event()
    gate = threading.Event()

    def hold(tx: WriteTx) -> None:
        loop.call_soon_threadsafe(holding.set)
        gate.wait()

    held = asyncio.ensure_future(services.store.write(hold))
    await holding.wait()
    futures = starts()

    async def release() -> None:
        gate.set()
        await held

    # Tasks take their first step in the order they were made, and each write below is
    # queued in its first step: so all of them are queued before the gate opens.
    await asyncio.ensure_future(release())
    return await asyncio.gather(*futures, return_exceptions=True)


def start(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    return asyncio.ensure_future(coro)


def change_rows(services: Services) -> list[dict[str, Any]]:
    table = services.store.tables.changes
    return list(table.select().order_by(table.seq).dicts())


# Group commit


async def test_concurrent_sends_are_committed_together(
    services: Services, channel: Channel
) -> None:
    await services.messages.send(creds(channel), message(channel))  # remembers the password
    batches, writes = writer(services).batches, writer(services).writes
    replies = await gated(
        services,
        lambda: [
            start(services.messages.send(creds(channel), message(channel, title=f"m{n}")))
            for n in range(100)
        ],
    )
    assert all(isinstance(reply, dict) and reply["accepted"] for reply in replies), replies
    assert len({reply["message_id"] for reply in replies}) == 100
    assert counts(services)["messages"] == 101
    # The holding write and then all 100 sends in one transaction.
    assert writer(services).writes - writes == 101
    assert writer(services).batches - batches == 2


async def test_many_concurrent_sends_share_commits(services: Services, channel: Channel) -> None:
    await services.messages.send(creds(channel), message(channel))
    batches, writes = writer(services).batches, writer(services).writes
    replies = await asyncio.gather(
        *(services.messages.send(creds(channel), message(channel)) for _ in range(300))
    )
    assert len({reply["message_id"] for reply in replies}) == 300
    assert counts(services)["messages"] == 301
    assert writer(services).writes - writes == 300
    assert writer(services).batches - batches < 300


# The change feed


async def test_every_change_has_a_feed_row_with_a_growing_seq(
    services: Services, channel: Channel
) -> None:
    channel_id = channel[0]
    await barrier(services)  # the channel's own change has reached the hub
    published: list[Change] = []
    services.hub.subscribe(published.extend)
    done: list[tuple[ChangeKind, str, str]] = []

    sent = await services.messages.send(creds(channel), message(channel))
    done.append((ChangeKind.MESSAGE, sent["message_id"], "created"))
    event_body = {
        "channel_id": channel_id,
        "title": "t",
        "status": "s",
        "message": "m",
        "severity": "low",
        "event_time": 1_700_000_000,
    }
    event = await services.events.apply(
        creds(channel), parse_event(EventAction.CREATE, event_body)[1]
    )
    event_id = event["event_id"]
    done.append((ChangeKind.EVENT, event_id, "created"))
    del event_body["title"]
    for action, word in ((EventAction.UPDATE, "updated"), (EventAction.CLOSE, "closed")):
        await services.events.apply(
            creds(channel), parse_event(action, event_body | {"event_id": event_id})[1]
        )
        done.append((ChangeKind.EVENT, event_id, word))
    thing_body = {"channel_id": channel_id, "observed_at": 1_700_000_000}
    thing = await services.things.apply(
        creds(channel), parse_thing(ThingAction.CREATE, thing_body)[1]
    )
    thing_id = thing["thing_id"]
    done.append((ChangeKind.THING, thing_id, "created"))
    for action, word in (
        (ThingAction.UPDATE, "updated"),
        (ThingAction.ARCHIVE, "archived"),
        (ThingAction.DELETE, "deleted"),
    ):
        await services.things.apply(
            creds(channel), parse_thing(action, thing_body | {"thing_id": thing_id})[1]
        )
        done.append((ChangeKind.THING, thing_id, word))
    await services.channels.update(LOCAL_OPERATOR, channel_id, name="renamed")
    done.append((ChangeKind.CHANNEL, channel_id, "renamed"))
    # The hub hears of a batch after its commit, not necessarily before its writers resume;
    # a later write's return is a point by which it has.
    await barrier(services)

    rows = [r for r in change_rows(services) if r["channel_id"] == channel_id][1:]  # not "created"
    assert [(r["kind"], r["entity_id"], r["action"]) for r in rows] == [
        (kind.value, entity, action) for kind, entity, action in done
    ]
    seqs = [r["seq"] for r in rows]
    assert all(a < b for a, b in itertools.pairwise(seqs)), seqs
    # The hub saw exactly these, in this order, with the same numbers.
    assert [c.seq for c in published] == seqs
    assert [(c.kind, c.entity_id, c.action) for c in published] == done
    # A message is numbered by its change.
    [stored] = message_rows.recent(services.store.tables, channel_id, now_ms(), limit=10)
    assert stored["seq"] == seqs[0]
    # An event's updates are its change rows.
    updates = states.updates(services.store.tables, EVENTS, channel_id, event_id)
    assert [u["seq"] for u in updates] == seqs[1:4]


async def test_entity_and_change_row_commit_or_roll_back_together(
    services: Services, channel: Channel
) -> None:
    await barrier(services)
    published: list[Change] = []
    services.hub.subscribe(published.extend)
    before = counts(services)
    row = {
        "message_id": new_hex_id(),
        "channel_id": channel[0],
        "op_id": "x",
        "created_at": now_ms(),
        "expires_at": None,
        "title": "half",
    }

    def insert_then_fail(tx: WriteTx) -> None:
        message_rows.insert(tx, row)  # writes the change row, then the message row
        raise PushgodError(ErrorCode.INVALID_FIELD, "refused after the insert")

    with pytest.raises(PushgodError):
        await services.store.write(insert_then_fail)
    assert counts(services) == before
    # A refused domain change leaves no trace either.
    event_body = {
        "channel_id": channel[0],
        "status": "s",
        "message": "m",
        "severity": "low",
        "event_time": 1_700_000_000,
        "event_id": "never-created",
    }
    with pytest.raises(PushgodError) as refused:
        await services.events.apply(creds(channel), parse_event(EventAction.UPDATE, event_body)[1])
    assert refused.value.code is ErrorCode.EVENT_NOT_FOUND
    assert counts(services) == before
    await barrier(services)  # anything published would be in by now
    assert published == []


async def test_hub_hears_of_changes_only_after_commit_and_in_order(
    services: Services, channel: Channel
) -> None:
    await services.messages.send(creds(channel), message(channel))
    await barrier(services)
    tables = services.store.tables
    heard: list[int] = []
    visible: list[bool] = []

    def subscriber(changes: list[Change]) -> None:
        for change in changes:
            heard.append(change.seq)
            # This thread's own read connection sees only what is committed.
            visible.append(tables.changes.select().where(tables.changes.seq == change.seq).exists())

    services.hub.subscribe(subscriber)
    sends = [services.messages.send(creds(channel), message(channel)) for _ in range(60)]
    things = [
        services.things.apply(
            creds(channel),
            parse_thing(ThingAction.CREATE, {"channel_id": channel[0], "observed_at": 1})[1],
        )
        for _ in range(20)
    ]
    await asyncio.gather(*sends, *things)
    await barrier(services)
    assert len(heard) == 80
    assert heard == sorted(heard) and len(set(heard)) == 80
    assert all(visible)
    assert services.hub.last_seq == heard[-1]


async def test_a_failing_write_does_not_roll_back_its_batch(
    services: Services, channel: Channel
) -> None:
    await services.messages.send(creds(channel), message(channel))
    closed = await services.events.apply(
        creds(channel),
        parse_event(
            EventAction.CREATE,
            {
                "channel_id": channel[0],
                "title": "t",
                "status": "s",
                "message": "m",
                "severity": "low",
                "event_time": 1,
            },
        )[1],
    )
    close = parse_event(
        EventAction.CLOSE,
        {
            "channel_id": channel[0],
            "event_id": closed["event_id"],
            "status": "s",
            "message": "m",
            "severity": "low",
            "event_time": 2,
        },
    )[1]
    await services.events.apply(creds(channel), close)
    await barrier(services)
    published: list[Change] = []
    services.hub.subscribe(published.extend)
    before = counts(services)
    batches = writer(services).batches

    def broken(tx: WriteTx) -> None:
        tx.tables.things.insert(
            channel_id=channel[0], id="ghost", state="active", updated_at=1, data="{}"
        ).execute()
        raise RuntimeError("a bug in a write")

    outcomes = await gated(
        services,
        lambda: [
            start(services.messages.send(creds(channel), message(channel, title="first"))),
            start(services.store.write(broken)),
            start(services.messages.send(creds(channel), message(channel, title="second"))),
            start(services.events.apply(creds(channel), close)),  # refused: already closed
            start(services.messages.send(creds(channel), message(channel, title="third"))),
        ],
    )
    assert writer(services).batches - batches == 2  # the holding write, then these five
    first, bug, second, refused, third = outcomes
    assert isinstance(bug, RuntimeError)
    assert isinstance(refused, PushgodError) and refused.code is ErrorCode.EVENT_CLOSED
    assert all(isinstance(o, dict) and o["accepted"] for o in (first, second, third))
    after = counts(services)
    assert after["messages"] == before["messages"] + 3
    assert after["changes"] == before["changes"] + 3
    assert after["things"] == before["things"] == 0
    await barrier(services)
    assert [c.entity_id for c in published] == [
        first["message_id"],
        second["message_id"],
        third["message_id"],
    ]


# Cleanup and retention


async def insert_message(services: Services, channel_id: str, created_at: int) -> str:
    message_id = new_hex_id()
    row = {
        "message_id": message_id,
        "channel_id": channel_id,
        "op_id": new_hex_id(),
        "title": "old",
        "created_at": created_at,
        "expires_at": None,
    }
    await services.store.write(lambda tx: message_rows.insert(tx, row))
    return message_id


def message_ids(services: Services, channel_id: str) -> list[str]:
    table = services.store.tables.messages
    query = table.select(table.id).where(table.channel_id == channel_id).order_by(table.seq)
    return [row["id"] for row in query]


def change_ids(services: Services, channel_id: str, kind: ChangeKind) -> list[str]:
    return [
        r["entity_id"]
        for r in change_rows(services)
        if r["channel_id"] == channel_id and r["kind"] == kind.value
    ]


async def test_cleanup_removes_expired_messages(services: Services, channel: Channel) -> None:
    now_s = now_ms() // 1000
    await services.messages.send(creds(channel), message(channel, ttl=now_s - 10))
    live = await services.messages.send(creds(channel), message(channel, ttl=now_s + 3600))
    forever = await services.messages.send(creds(channel), message(channel))
    assert await services.cleanup.run_once() == 1
    kept = [live["message_id"], forever["message_id"]]
    assert message_ids(services, channel[0]) == kept
    assert change_ids(services, channel[0], ChangeKind.MESSAGE) == kept
    assert await services.cleanup.run_once() == 0


async def test_cleanup_keeps_each_channels_newest_messages(
    services: Services, channel: Channel
) -> None:
    own, own_password = await services.channels.create(LOCAL_OPERATOR, "own", retention_count=2)
    own_channel = (own.id, own_password)
    sent: dict[str, list[str]] = {channel[0]: [], own.id: []}
    for target in (channel, own_channel):
        for _ in range(6):
            reply = await services.messages.send(creds(target), message(target))
            sent[target[0]].append(reply["message_id"])
    assert await services.cleanup.run_once() == (6 - MESSAGES_PER_CHANNEL) + (6 - 2)
    assert message_ids(services, channel[0]) == sent[channel[0]][-MESSAGES_PER_CHANNEL:]
    assert message_ids(services, own.id) == sent[own.id][-2:]
    assert change_ids(services, own.id, ChangeKind.MESSAGE) == sent[own.id][-2:]


async def test_cleanup_removes_messages_past_their_age(
    services: Services, channel: Channel
) -> None:
    own, _ = await services.channels.create(LOCAL_OPERATOR, "own", retention_age_ms=HOUR_MS)
    now = now_ms()
    # The default age here is 2 days; the channel `own` keeps one hour.
    old_default = await insert_message(services, channel[0], now - 3 * DAY_MS)
    young_default = await insert_message(services, channel[0], now - DAY_MS)
    old_own = await insert_message(services, own.id, now - 2 * HOUR_MS)
    young_own = await insert_message(services, own.id, now - HOUR_MS // 2)
    assert await services.cleanup.run_once() == 2
    assert old_default not in message_ids(services, channel[0])
    assert message_ids(services, channel[0]) == [young_default]
    assert message_ids(services, own.id) == [young_own]
    assert old_own not in change_ids(services, own.id, ChangeKind.MESSAGE)


async def test_cleanup_removes_old_closed_events_with_their_updates(
    services: Services, channel: Channel
) -> None:
    now = now_ms()
    body = {
        "channel_id": channel[0],
        "title": "t",
        "status": "s",
        "message": "m",
        "severity": "low",
        "event_time": 1_700_000_000,
    }
    created = parse_event(EventAction.CREATE, body)[1]
    close = parse_event(EventAction.CLOSE, body | {"title": None, "event_id": "x"})[1]
    old_closed = open_event(created, new_hex_id(), now - 3 * DAY_MS)
    old_ongoing = open_event(created, new_hex_id(), now - 3 * DAY_MS)

    def write_old(tx: WriteTx) -> None:
        states.save(
            tx, EVENTS, old_closed.event_id, old_closed.to_json(), "created", created.changes()
        )
        states.save(
            tx,
            EVENTS,
            old_closed.event_id,
            advance_event(old_closed, close, now - 2 * DAY_MS).to_json(),
            "closed",
            {},
        )
        states.save(
            tx, EVENTS, old_ongoing.event_id, old_ongoing.to_json(), "created", created.changes()
        )

    await services.store.write(write_old)
    recent = await services.events.apply(creds(channel), created)
    await services.events.apply(
        creds(channel),
        parse_event(EventAction.CLOSE, body | {"title": None, "event_id": recent["event_id"]})[1],
    )
    assert await services.cleanup.run_once() == 1
    tables = services.store.tables
    assert states.get(tables, EVENTS, channel[0], old_closed.event_id) is None
    assert states.updates(tables, EVENTS, channel[0], old_closed.event_id) == []
    assert states.get(tables, EVENTS, channel[0], old_ongoing.event_id) is not None
    assert len(states.updates(tables, EVENTS, channel[0], recent["event_id"])) == 2


async def test_cleanup_forgets_old_op_ids(services: Services, channel: Channel) -> None:
    now = now_ms()
    remembered = {"channel_id": channel[0], "op_id": "weekly", "message_id": new_hex_id()}
    key = op_key("message", "-", "weekly")
    await services.store.write(
        lambda tx: ops.remember(
            tx, channel[0], key, remembered | {"accepted": True}, now - 8 * DAY_MS
        )
    )
    fresh = await services.messages.send(creds(channel), message(channel, op_id="daily"))
    # Still remembered before the cleanup: the op counts as done.
    again = await services.messages.send(creds(channel), message(channel, op_id="weekly"))
    assert again["message_id"] == remembered["message_id"]
    assert await services.cleanup.run_once() == 1
    # Forgotten after it: the same op_id is a new message; the fresh one is still known.
    new = await services.messages.send(creds(channel), message(channel, op_id="weekly"))
    assert new["message_id"] != remembered["message_id"]
    assert await services.messages.send(creds(channel), message(channel, op_id="daily")) == fresh


async def test_a_channel_deleted_while_a_send_waits_is_not_found_not_a_500(
    services: Services, channel: Channel
) -> None:
    """The send was authorized, then the channel's delete committed first: the insert hit
    the foreign key and the caller got an IntegrityError (a 500 over HTTP)."""
    await services.messages.send(creds(channel), message(channel))  # password now cached
    outcomes = await gated(
        services,
        lambda: [
            start(services.channels.delete(LOCAL_OPERATOR, channel[0])),
            start(services.messages.send(creds(channel), message(channel))),
        ],
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PushgodError)
    assert outcomes[1].code is ErrorCode.CHANNEL_NOT_FOUND


def test_processes_migrating_a_new_database_take_turns(tmp_path: Path) -> None:
    """The runner decides what to apply before locking: a daemon and a CLI starting on a
    new database at once failed with 'table channels already exists'."""
    import subprocess
    import sys

    # Each process imports everything, then waits for its go on stdin, so that all of
    # them open the new database at the same moment.
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from pushgod.store.database import Store\n"
        "sys.stdin.readline()\n"
        "async def main():\n"
        "    store = Store(Path(sys.argv[1]))\n"
        "    store.open(lambda changes: None)\n"
        "    store.close()\n"
        "asyncio.run(main())\n"
    )
    for attempt in range(5):
        data = tmp_path / f"data{attempt}"
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(data)],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(4)
        ]
        for run in runs:
            assert run.stdin is not None
            run.stdin.write(b"go\n")
            run.stdin.flush()
        errors = [run.communicate(timeout=60)[1].decode() for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, errors
