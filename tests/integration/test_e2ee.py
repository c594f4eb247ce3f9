"""End-to-end encryption: pairing clients, their keys, sealing at ingest, pre-sealed sends,
and streams that end when a credential stops working (docs/e2ee.md)."""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.public
import pytest
from aiohttp import ClientResponse

from pushgod.config import Settings
from pushgod.model import sealing
from pushgod.model.errors import PushgodError
from pushgod.model.tokens import Scope
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.clients import code_hash
from pushgod.service.services import Services
from pushgod.store import clients as client_rows
from pushgod.store.clients import PairingCode

from .support import (
    Client,
    basic,
    bearer,
    call,
    channel_token,
    check_envelope,
    fail,
    ok,
    settings_with,
)

Channel = tuple[str, str]
NOW_S = int(time.time())
GUARD_S = 10.0
"""How long a stream may take to say what it must: a failure guard, never a wait."""
ROW_TABLES = (
    "channels",
    "tokens",
    "clients",
    "pairing_codes",
    "changes",
    "messages",
    "events",
    "things",
    "ops",
)
POLICY = ",".join((*sealing.DEFAULT_POLICY, "thing.attrs.location"))
"""The default policy, plus the one thing attr this file seals."""


# -- helpers ---------------------------------------------------------------------------


def rows(services: Services) -> dict[str, int]:
    """Rows in every table pairing and sending can touch."""
    tables = services.store.tables
    return {
        name: tables.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]  # noqa: S608
        for name in ROW_TABLES
    }


def b64(data: bytes) -> str:
    return sealing.b64encode(data)


@dataclass
class Paired:
    """A client as a phone app would be: its key pair and what pairing returned."""

    client_id: str
    channel_id: str
    token: str
    secret_key: bytes
    public_key: bytes

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)

    def reveal(self, item: dict[str, Any], kind: str) -> dict[str, Any]:
        """The item with every envelope opened and applied, as a client shows it."""
        opened = [
            sealing.open_envelope(
                envelope, self.client_id, self.secret_key, self.public_key, self.channel_id, kind
            )
            for envelope in item.get("sealed", [])
        ]
        return sealing.reveal(item, opened)


def key_pair() -> tuple[bytes, bytes]:
    private = nacl.public.PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


async def new_code(services: Services, channel_id: str) -> str:
    code, expires_at = await services.clients.pairing_code(LOCAL_OPERATOR, channel_id)
    assert expires_at > int(time.time() * 1000)
    return code


async def pair(client: Client, services: Services, channel_id: str, name: str = "phone") -> Paired:
    """Pair a new client over HTTP, as `pushgod client pair` and a phone would."""
    code = await new_code(services, channel_id)
    secret_key, public_key = key_pair()
    data = await ok(
        client,
        "POST",
        "/api/v1/pair",
        json={"code": code, "public_key": b64(public_key), "name": name},
    )
    return Paired(data["client_id"], data["channel_id"], data["token"], secret_key, public_key)


def path(channel_id: str, suffix: str = "") -> str:
    return f"/api/v1/channels/{channel_id}{suffix}"


def marker() -> str:
    """A random, distinctive ASCII string to look for."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


async def next_line(reply: ClientResponse) -> dict[str, Any]:
    """The next NDJSON line that is not a keepalive; fails if the stream ends first."""
    while True:
        line = await asyncio.wait_for(reply.content.readline(), GUARD_S)
        assert line, "the stream ended"
        item: dict[str, Any] = json.loads(line)
        if item["type"] != "keepalive":
            return item


async def poll(client: Client, channel_id: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    """Everything the channel's NDJSON stream replays, then its end."""
    async with client.get(path(channel_id, "/json?since=all&poll=1"), headers=auth) as reply:
        assert reply.status == 200, await reply.text()
        return [json.loads(line) for line in (await reply.text()).splitlines()]


async def sealing_channel(services: Services, policy: str = POLICY) -> Channel:
    row, password = await services.channels.create(LOCAL_OPERATOR, "sealed channel")
    await services.channels.update(LOCAL_OPERATOR, row.id, e2ee=policy)
    return row.id, password


def with_password(channel: Channel, **fields: Any) -> dict[str, Any]:
    return {"channel_id": channel[0], "password": channel[1]} | fields


def event_fields(**fields: Any) -> dict[str, Any]:
    return {
        "title": "backup",
        "status": "running",
        "message": "started",
        "severity": "normal",
        "event_time": NOW_S,
    } | fields


# -- pairing ---------------------------------------------------------------------------


async def test_a_pairing_code_redeems_once(
    client: Client, services: Services, channel: Channel
) -> None:
    code = await new_code(services, channel[0])
    assert len(code) == 11 and code[5] == "-", code
    _, public_key = key_pair()
    before = rows(services)
    body = {"code": code, "public_key": b64(public_key), "name": "Pixel 8"}
    data = await ok(client, "POST", "/api/v1/pair", json=body)
    assert set(data) == {"client_id", "channel_id", "name", "token", "scopes"}, data
    assert data["channel_id"] == channel[0]
    assert data["name"] == "Pixel 8"
    assert data["scopes"] == ["subscribe"]
    assert data["token"].startswith("pgd_")
    assert data["client_id"].isascii() and data["client_id"].isalnum()
    after = rows(services)
    assert after["clients"] == before["clients"] + 1
    assert after["tokens"] == before["tokens"] + 1
    assert after["pairing_codes"] == before["pairing_codes"] - 1
    [row] = services.clients.list(LOCAL_OPERATOR, channel[0])
    assert (row.id, row.public_key, row.name) == (data["client_id"], b64(public_key), "Pixel 8")

    _, other_key = key_pair()
    again = {"code": code, "public_key": b64(other_key)}
    await fail(client, "POST", "/api/v1/pair", 403, "pairing_code_invalid", json=again)
    assert rows(services) == after


async def test_an_expired_code_is_refused(
    client: Client, services: Services, channel: Channel
) -> None:
    code = "ABCDE-FGHJK"
    now = int(time.time() * 1000)
    expired = PairingCode(code_hash(code), channel[0], None, now - 20 * 60_000, now - 1)
    await services.store.write(lambda tx: client_rows.insert_code(tx, expired))
    before = rows(services)
    _, public_key = key_pair()
    body = {"code": code, "public_key": b64(public_key)}
    await fail(client, "POST", "/api/v1/pair", 403, "pairing_code_invalid", json=body)
    after = rows(services)
    assert after["clients"] == before["clients"] and after["tokens"] == before["tokens"]
    assert services.clients.list(LOCAL_OPERATOR, channel[0]) == []


async def test_a_code_is_case_insensitive_and_the_dash_optional(
    client: Client, services: Services, channel: Channel
) -> None:
    code = await new_code(services, channel[0])
    _, public_key = key_pair()
    sloppy = code.replace("-", "").lower()
    data = await ok(
        client, "POST", "/api/v1/pair", json={"code": sloppy, "public_key": b64(public_key)}
    )
    assert data["channel_id"] == channel[0]

    # O reads as 0, I and L as 1: a code typed from a screen still works.
    made = "01ABC-DE1FG"
    now = int(time.time() * 1000)
    row = PairingCode(code_hash(made), channel[0], "made", now, now + 60_000)
    await services.store.write(lambda tx: client_rows.insert_code(tx, row))
    _, public_key = key_pair()
    typed = {"code": " oiabc de lfg ", "public_key": b64(public_key)}
    data = await ok(client, "POST", "/api/v1/pair", json=typed)
    assert (data["channel_id"], data["name"]) == (channel[0], "made")


async def test_a_client_token_reads_its_channel_only_and_cannot_publish(
    client: Client, services: Services, channel: Channel
) -> None:
    other, _ = await services.channels.create(LOCAL_OPERATOR, "other")
    paired = await pair(client, services, channel[0])
    await ok(client, "POST", "/message", json=with_password(channel, title="hello"))

    listing = await ok(client, "GET", path(channel[0], "/messages"), headers=paired.auth)
    assert [m["title"] for m in listing["messages"]] == ["hello"]
    for suffix in ("", "/events", "/things", "/keys"):
        await ok(client, "GET", path(channel[0], suffix), headers=paired.auth)
    [item] = await poll(client, channel[0], paired.auth)
    assert item["message"]["title"] == "hello"

    for suffix in ("", "/messages", "/events", "/things", "/keys", "/json", "/sse"):
        await fail(
            client, "GET", path(other.id, suffix), 403, "channel_forbidden", headers=paired.auth
        )
    before = rows(services)
    await fail(
        client,
        "POST",
        "/message",
        403,
        "insufficient_scope",
        json={"channel_id": channel[0], "title": "from a client"},
        headers=paired.auth,
    )
    await fail(
        client,
        "POST",
        "/event/create",
        403,
        "insufficient_scope",
        json={"channel_id": channel[0]} | event_fields(),
        headers=paired.auth,
    )
    assert rows(services) == before


FAILED_LOGINS = 3


class TestGuessingCodes:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_SECURITY_FAILED_LOGINS=str(FAILED_LOGINS))

    async def test_wrong_codes_lead_to_429_even_for_the_right_code(
        self, client: Client, services: Services, channel: Channel
    ) -> None:
        code = await new_code(services, channel[0])
        _, public_key = key_pair()
        wrong = "00000-00000" if code != "00000-00000" else "11111-11111"
        for _ in range(FAILED_LOGINS):
            body = {"code": wrong, "public_key": b64(public_key)}
            await fail(client, "POST", "/api/v1/pair", 403, "pairing_code_invalid", json=body)
        before = rows(services)
        body = {"code": code, "public_key": b64(public_key)}
        async with client.post("/api/v1/pair", json=body) as reply:
            envelope = await reply.json()
            check_envelope(envelope, reply.status)
            assert (reply.status, envelope["error_code"]) == (429, "rate_limited"), envelope
            retry_after = reply.headers.get("Retry-After", "")
        assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
        # Refused before it was looked at: the right code is still there, unused.
        assert rows(services) == before
        assert services.clients.list(LOCAL_OPERATOR, channel[0]) == []

    async def test_guesses_in_parallel_are_limited_too(
        self, client: Client, services: Services, channel: Channel
    ) -> None:
        """Attempts still in flight count, so a burst cannot try more than the limit."""
        _, public_key = key_pair()
        body = {"code": "22222-22222", "public_key": b64(public_key)}
        replies = await asyncio.gather(
            *(call(client, "POST", "/api/v1/pair", json=body) for _ in range(4 * FAILED_LOGINS))
        )
        codes = [(status, reply["error_code"]) for status, reply in replies]
        assert set(codes) <= {(403, "pairing_code_invalid"), (429, "rate_limited")}, codes
        assert codes.count((403, "pairing_code_invalid")) <= FAILED_LOGINS, codes
        assert codes.count((429, "rate_limited")) >= 3 * FAILED_LOGINS, codes


def _pair_body(public_key: Any = "GOOD", **extra: Any) -> Callable[[str, str], dict[str, Any]]:
    """A pair request for (code, good public key); "GOOD" stands for the good key."""

    def build(code: str, good_key: str) -> dict[str, Any]:
        body: dict[str, Any] = {"code": code}
        if public_key is not None:
            body["public_key"] = good_key if public_key == "GOOD" else public_key
        return body | extra

    return build


_KEY = bytes(range(1, 33))
BAD_PAIR: list[tuple[str, Callable[[str, str], Any], int, str]] = [
    ("missing-code", lambda code, key: {"public_key": key}, 403, "pairing_code_invalid"),
    (
        "blank-code",
        lambda code, key: {"code": "  ", "public_key": key},
        403,
        "pairing_code_invalid",
    ),
    ("missing-public-key", _pair_body(None), 400, "invalid_public_key"),
    (
        "null-public-key",
        lambda code, key: {"code": code, "public_key": None},
        400,
        "invalid_public_key",
    ),
    ("public-key-number", _pair_body(5), 400, "invalid_json_data"),
    ("public-key-not-base64", _pair_body("not base64url at all!!!"), 400, "invalid_public_key"),
    ("public-key-standard-base64", _pair_body("+/" + b64(_KEY)[2:]), 400, "invalid_public_key"),
    ("public-key-hex", _pair_body(_KEY.hex()), 400, "invalid_public_key"),
    ("public-key-31-bytes", _pair_body(b64(_KEY[:31])), 400, "invalid_public_key"),
    ("public-key-33-bytes", _pair_body(b64(_KEY + b"\1")), 400, "invalid_public_key"),
    ("public-key-empty", _pair_body(""), 400, "invalid_public_key"),
    ("public-key-all-zeros", _pair_body(b64(bytes(32))), 400, "invalid_public_key"),
    ("public-key-non-canonical", _pair_body(b64(_KEY)[:-1] + "x"), 400, "invalid_public_key"),
    ("unknown-field", _pair_body(device="pixel"), 400, "invalid_json_data"),
    ("channel-id-field", _pair_body(channel_id="0" * 26), 400, "invalid_json_data"),
    ("name-blank", _pair_body(name=" "), 400, "invalid_field"),
    ("name-too-long", _pair_body(name="n" * 65), 400, "invalid_field"),
    ("name-control-char", _pair_body(name="a\nb"), 400, "invalid_field"),
    ("array-body", lambda code, key: [{"code": code, "public_key": key}], 400, "invalid_json_data"),
    ("non-json", lambda code, key: b"{code: nope", 400, "invalid_json_syntax"),
    ("empty-body", lambda code, key: b"", 400, "invalid_json_syntax"),
]


@pytest.mark.parametrize(
    ("name", "build", "status", "code"), BAD_PAIR, ids=[c[0] for c in BAD_PAIR]
)
async def test_bad_pair_input_changes_nothing(
    client: Client,
    services: Services,
    channel: Channel,
    name: str,
    build: Callable[[str, str], Any],
    status: int,
    code: str,
) -> None:
    pairing = await new_code(services, channel[0])
    _, public_key = key_pair()
    good_key = b64(public_key)
    body = build(pairing, good_key)
    before = rows(services)
    if isinstance(body, bytes):
        kwargs: dict[str, Any] = {"data": body, "headers": {"Content-Type": "application/json"}}
    else:
        kwargs = {"json": body}
    await fail(client, "POST", "/api/v1/pair", status, code, **kwargs)
    assert rows(services) == before, name
    # The code was not used up: it pairs once now, and only once.
    data = await ok(client, "POST", "/api/v1/pair", json={"code": pairing, "public_key": good_key})
    [row] = services.clients.list(LOCAL_OPERATOR, channel[0])
    assert (row.id, row.public_key) == (data["client_id"], good_key)
    await fail(
        client,
        "POST",
        "/api/v1/pair",
        403,
        "pairing_code_invalid",
        json={"code": pairing, "public_key": good_key},
    )


async def test_pairing_needs_a_json_content_type(
    client: Client, services: Services, channel: Channel
) -> None:
    pairing = await new_code(services, channel[0])
    _, public_key = key_pair()
    body = json.dumps({"code": pairing, "public_key": b64(public_key)})
    before = rows(services)
    await fail(
        client,
        "POST",
        "/api/v1/pair",
        400,
        "missing_json_content_type",
        data=body,
        headers={"Content-Type": "text/plain"},
    )
    await fail(
        client,
        "POST",
        "/api/v1/pair?channel=x",
        400,
        "invalid_query",
        json={"code": pairing, "public_key": b64(public_key)},
    )
    assert rows(services) == before


async def test_a_channel_pairs_at_most_64_clients(
    client: Client, services: Services, channel: Channel
) -> None:
    paired = [await pair(client, services, channel[0], f"c{n}") for n in range(64)]
    code = await new_code(services, channel[0])
    _, public_key = key_pair()
    body = {"code": code, "public_key": b64(public_key)}
    before = rows(services)
    await fail(client, "POST", "/api/v1/pair", 409, "client_limit_reached", json=body)
    assert rows(services) == before  # the code too: it was not used up
    await services.clients.revoke(LOCAL_OPERATOR, paired[0].client_id)
    data = await ok(client, "POST", "/api/v1/pair", json=body)
    assert len(services.clients.list(LOCAL_OPERATOR, channel[0])) == 64
    assert data["client_id"] not in {p.client_id for p in paired}


# -- keys ------------------------------------------------------------------------------


async def test_keys_list_the_paired_clients_and_the_policy(
    client: Client, services: Services, channel: Channel
) -> None:
    first = await pair(client, services, channel[0], "first")
    second = await pair(client, services, channel[0], "second")
    await services.channels.update(LOCAL_OPERATOR, channel[0], e2ee=POLICY)
    publish = await channel_token(services, channel[0], Scope.PUBLISH)
    subscribe = await channel_token(services, channel[0], Scope.SUBSCRIBE)
    expected_policy = sealing.parse_policy(POLICY).text()
    for auth in (basic(*channel), bearer(publish), bearer(subscribe), first.auth):
        data = await ok(client, "GET", path(channel[0], "/keys"), headers=auth)
        assert set(data) == {"channel_id", "e2ee", "clients"}, data
        assert data["channel_id"] == channel[0]
        assert data["e2ee"] == expected_policy
        assert sealing.parse_policy(data["e2ee"]) == sealing.parse_policy(POLICY)
        listed = {c["client_id"]: c for c in data["clients"]}
        assert set(listed) == {first.client_id, second.client_id}
        for paired in (first, second):
            entry = listed[paired.client_id]
            assert set(entry) == {"client_id", "public_key", "created_at"}
            assert entry["public_key"] == b64(paired.public_key)
            assert isinstance(entry["created_at"], int)

    await services.channels.update(LOCAL_OPERATOR, channel[0], e2ee=None)
    data = await ok(client, "GET", path(channel[0], "/keys"), headers=basic(*channel))
    assert data["e2ee"] is None and len(data["clients"]) == 2


async def test_keys_refusals(client: Client, services: Services, channel: Channel) -> None:
    other, other_password = await services.channels.create(LOCAL_OPERATOR, "other")
    other_token = await channel_token(services, other.id, Scope.PUBLISH, Scope.SUBSCRIBE)
    other_client = await pair(client, services, other.id)
    keys = path(channel[0], "/keys")
    await fail(client, "GET", keys, 401, "authentication_failed")
    await fail(client, "GET", keys, 401, "authentication_failed", headers=bearer("pgd_" + "x" * 43))
    await fail(client, "GET", keys, 403, "channel_forbidden", headers=bearer(other_token))
    await fail(client, "GET", keys, 403, "channel_forbidden", headers=other_client.auth)
    await fail(
        client, "GET", keys, 403, "password_mismatch", headers=basic(channel[0], other_password)
    )


# -- sealing at ingest -----------------------------------------------------------------


@dataclass
class SealedWorld:
    channel: Channel
    first: Paired
    second: Paired
    message_id: str
    event_id: str
    thing_id: str
    plain: dict[str, Any]


async def send_sealed_items(client: Client, services: Services) -> SealedWorld:
    """A sealing channel with two paired clients, and a message, an event (create and
    update) and a thing (create and update) sent to it in plain text."""
    channel = await sealing_channel(services)
    first = await pair(client, services, channel[0], "first")
    second = await pair(client, services, channel[0], "second")
    plain: dict[str, Any] = {
        "message": {
            "title": "Backup finished ✓",
            "body": "Größe: 1,2 GB",
            "url": "https://example.org/backups/42",
            "images": ["https://example.org/a.png", "https://example.org/b.png"],
            "metadata": {"host": "nas", "bytes": 1200, "ok": True},
        },
        "event_create": {
            "title": "Front door",
            "description": "the sensor at the front door",
            "message": "Alice entered",
            "attrs": {"room": "Hall", "count": 1, "who": {"name": "Alice"}},
        },
        "event_update": {"message": "Bob entered", "attrs": {"room": "Kitchen", "count": 2}},
        "thing_create": {"location": "Basement", "temperature": 21},
        "thing_update": {"location": "Attic", "temperature": 25},
    }
    message = await ok(
        client,
        "POST",
        "/message",
        json=with_password(channel, tags=["backup"], severity="high", **plain["message"]),
    )
    event = await ok(
        client,
        "POST",
        "/event/create",
        json=with_password(channel, **event_fields(tags=["door"], **plain["event_create"])),
    )
    await ok(
        client,
        "POST",
        "/event/update",
        json=with_password(
            channel,
            event_id=event["event_id"],
            status="busy",
            severity="normal",
            event_time=NOW_S + 1,
            **plain["event_update"],
        ),
    )
    thing = await ok(
        client,
        "POST",
        "/thing/create",
        json=with_password(
            channel, title="Freezer", observed_at=NOW_S, attrs=plain["thing_create"]
        ),
    )
    await ok(
        client,
        "POST",
        "/thing/update",
        json=with_password(
            channel,
            thing_id=thing["thing_id"],
            observed_at=NOW_S + 1,
            attrs=plain["thing_update"],
        ),
    )
    return SealedWorld(
        channel,
        first,
        second,
        message["message_id"],
        event["event_id"],
        thing["thing_id"],
        plain,
    )


def assert_well_formed(envelope: dict[str, Any], recipients: set[str]) -> None:
    assert set(envelope) == {"v", "fields", "nonce", "ciphertext", "keys"}, envelope
    assert envelope["v"] == 1
    assert envelope["fields"] == sorted(set(envelope["fields"]))
    assert set(envelope["keys"]) == recipients
    assert len(sealing.b64decode(envelope["nonce"], "nonce")) == sealing.NONCE_BYTES
    for sealed_key in envelope["keys"].values():
        assert len(sealing.b64decode(sealed_key, "key")) == sealing.SEALED_KEY_BYTES


async def test_sealed_at_ingest_and_opened_by_each_client(
    client: Client, services: Services
) -> None:
    world = await send_sealed_items(client, services)
    channel_id, plain = world.channel[0], world.plain
    both = {world.first.client_id, world.second.client_id}
    auth = basic(*world.channel)

    # The message: placeholders, plain routing fields, one envelope for both clients.
    [message] = (await ok(client, "GET", path(channel_id, "/messages"), headers=auth))["messages"]
    assert message["message_id"] == world.message_id
    assert (message["title"], message["body"], message["url"]) == ("Encrypted message", None, None)
    assert (message["images"], message["metadata"]) == ([], {})
    assert (message["tags"], message["severity"]) == (["backup"], "high")
    [envelope] = message["sealed"]
    assert_well_formed(envelope, both)
    assert envelope["fields"] == ["body", "images", "metadata", "title", "url"]
    for paired in (world.first, world.second):
        shown = paired.reveal(message, "message")
        assert "sealed" not in shown
        assert {name: shown[name] for name in plain["message"]} == plain["message"]
        assert shown["tags"] == ["backup"]

    # The event: its state carries both changes' envelopes, oldest first.
    detail = await ok(client, "GET", path(channel_id, f"/events/{world.event_id}"), headers=auth)
    state, updates = detail["event"], detail["updates"]
    assert (state["title"], state["description"]) == ("Encrypted event", None)
    assert (state["message"], state["attrs"]) == ("Encrypted update", {})
    assert (state["status"], state["tags"]) == ("busy", ["door"])
    created, updated = state["sealed"]
    assert [u["sealed"] for u in updates] == [[created], [updated]]
    assert created["fields"] == [
        "attrs.count",
        "attrs.room",
        "attrs.who",
        "description",
        "message",
        "title",
    ]
    assert updated["fields"] == ["attrs.count", "attrs.room", "message"]
    for envelope in (created, updated):
        assert_well_formed(envelope, both)
    for paired in (world.first, world.second):
        shown = paired.reveal(state, "event")
        assert shown["title"] == plain["event_create"]["title"]
        assert shown["description"] == plain["event_create"]["description"]
        assert shown["message"] == plain["event_update"]["message"]
        assert shown["attrs"] == {"room": "Kitchen", "count": 2, "who": {"name": "Alice"}}
        first_update = paired.reveal(updates[0], "event")
        assert first_update["message"] == plain["event_create"]["message"]
        assert first_update["title"] == plain["event_create"]["title"]
        second_update = paired.reveal(updates[1], "event")
        assert second_update["message"] == plain["event_update"]["message"]
    [listed] = (await ok(client, "GET", path(channel_id, "/events"), headers=auth))["events"]
    assert listed == state

    # The thing: only attrs.location is sealed; its other attrs stay plain.
    thing = (await ok(client, "GET", path(channel_id, f"/things/{world.thing_id}"), headers=auth))[
        "thing"
    ]
    assert thing["attrs"] == {"temperature": 25}
    assert thing["title"] == "Freezer"
    [envelope] = thing["sealed"]  # the create's envelope is superseded by the update's
    assert envelope["fields"] == ["attrs.location"]
    assert_well_formed(envelope, both)
    history = (
        await ok(client, "GET", path(channel_id, f"/things/{world.thing_id}/history"), headers=auth)
    )["changes"]
    assert [change["update"]["attrs"] for change in history] == [
        {"temperature": 25},
        {"temperature": 21},
    ]
    for paired in (world.first, world.second):
        assert paired.reveal(thing, "thing")["attrs"] == plain["thing_update"]
        newest, oldest = history
        assert paired.reveal(oldest["update"], "thing")["attrs"] == plain["thing_create"]
        assert paired.reveal(oldest["thing"], "thing")["attrs"] == plain["thing_create"]
        assert paired.reveal(newest["update"], "thing")["attrs"] == plain["thing_update"]

    # Nothing of the plaintext is in what the server shows anyone.
    for suffix in (
        "/messages",
        "/events?state=all",
        "/things?state=all",
        f"/events/{world.event_id}",
    ):
        text = json.dumps(await ok(client, "GET", path(channel_id, suffix), headers=auth))
        for secret in ("Backup finished", "Alice entered", "Bob entered", "Basement", "Attic"):
            assert secret not in text, (suffix, secret)


async def test_the_stream_carries_the_same_sealed_items(client: Client, services: Services) -> None:
    world = await send_sealed_items(client, services)
    channel_id = world.channel[0]
    auth = basic(*world.channel)
    items = await poll(client, channel_id, world.first.auth)
    assert [(i["type"], i["action"]) for i in items] == [
        ("message", "created"),
        ("event", "created"),
        ("event", "updated"),
        ("thing", "created"),
        ("thing", "updated"),
    ]
    assert await poll(client, channel_id, world.second.auth) == items

    [message] = (await ok(client, "GET", path(channel_id, "/messages"), headers=auth))["messages"]
    assert items[0]["message"] == {k: v for k, v in message.items() if k != "seq"}
    detail = await ok(client, "GET", path(channel_id, f"/events/{world.event_id}"), headers=auth)
    assert items[2]["event"] == detail["event"]
    assert items[1]["event"]["sealed"] == detail["event"]["sealed"][:1]
    stripped = [{k: v for k, v in u.items() if k not in ("seq", "at")} for u in detail["updates"]]
    assert [items[1]["update"], items[2]["update"]] == stripped
    thing = (await ok(client, "GET", path(channel_id, f"/things/{world.thing_id}"), headers=auth))[
        "thing"
    ]
    assert items[4]["thing"] == thing

    for paired in (world.first, world.second):
        shown = paired.reveal(items[0]["message"], "message")
        assert shown["title"] == world.plain["message"]["title"]
        assert paired.reveal(items[2]["event"], "event")["message"] == "Bob entered"
        assert paired.reveal(items[1]["update"], "event")["message"] == "Alice entered"
        assert paired.reveal(items[3]["thing"], "thing")["attrs"]["location"] == "Basement"
        assert paired.reveal(items[4]["update"], "thing")["attrs"]["location"] == "Attic"


async def test_a_revoked_client_is_not_sealed_to_afterwards(
    client: Client, services: Services
) -> None:
    channel = await sealing_channel(services)
    first = await pair(client, services, channel[0], "first")
    second = await pair(client, services, channel[0], "second")
    await ok(client, "POST", "/message", json=with_password(channel, title="before"))
    await services.clients.revoke(LOCAL_OPERATOR, first.client_id)
    await ok(client, "POST", "/message", json=with_password(channel, title="after"))

    keys = await ok(client, "GET", path(channel[0], "/keys"), headers=basic(*channel))
    assert [c["client_id"] for c in keys["clients"]] == [second.client_id]
    assert services.clients.list(LOCAL_OPERATOR, channel[0])[0].id == second.client_id
    listing = await ok(client, "GET", path(channel[0], "/messages"), headers=second.auth)
    after, before = listing["messages"]
    assert set(before["sealed"][0]["keys"]) == {first.client_id, second.client_id}
    assert set(after["sealed"][0]["keys"]) == {second.client_id}
    assert second.reveal(after, "message")["title"] == "after"
    assert first.reveal(before, "message")["title"] == "before"  # sealed to it back then
    with pytest.raises(PushgodError, match="not sealed for this client"):
        first.reveal(after, "message")
    await fail(
        client,
        "GET",
        path(channel[0], "/messages"),
        401,
        "authentication_failed",
        headers=first.auth,
    )


def _encodings(text: str) -> set[bytes]:
    """The forms a string could take in the data files."""
    return {
        text.encode(),
        json.dumps(text)[1:-1].encode(),  # as JSON escapes it (ASCII only)
        json.dumps(text, ensure_ascii=False)[1:-1].encode(),
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
    }


def _data_files(data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data_dir)): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
    }


async def test_no_sealed_plaintext_reaches_the_data_directory(
    client: Client, services: Services, settings: Settings
) -> None:
    """The done-when test: every sealed value is absent from every file pushgod keeps,
    while a value of a plain field is found the same way (so the scan can find things)."""
    channel = await sealing_channel(services)
    first = await pair(client, services, channel[0], "first")
    second = await pair(client, services, channel[0], "second")
    core = {name: marker() for name in (
        "m_title", "m_body", "m_url", "m_image", "m_meta", "m_meta_key",
        "e_title", "e_description", "e_message", "e_attr", "e_nested",
        "u_message", "u_attr", "c_message", "t_location", "t_location2",
    )}  # fmt: skip
    # Non-ASCII tails, so UTF-8 and JSON escapes differ from the text itself.
    sealed = {name: f"{value} Größe ✓" for name, value in core.items()}
    controls = {name: marker() for name in ("m_tag", "e_tag", "t_plain", "e_status")}

    await ok(
        client,
        "POST",
        "/message",
        json=with_password(
            channel,
            op_id="sealed-message-1",
            title=sealed["m_title"],
            body=sealed["m_body"],
            url=f"https://example.org/{core['m_url']}",
            images=[f"https://example.org/{core['m_image']}.png"],
            metadata={"note": sealed["m_meta"], core["m_meta_key"]: 1},
            tags=[controls["m_tag"]],
        ),
    )
    event = await ok(
        client,
        "POST",
        "/event/create",
        json=with_password(
            channel,
            **event_fields(
                title=sealed["e_title"],
                description=sealed["e_description"],
                message=sealed["e_message"],
                attrs={"who": sealed["e_attr"], "detail": {"inner": sealed["e_nested"]}},
                tags=[controls["e_tag"]],
            ),
        ),
    )
    await ok(
        client,
        "POST",
        "/event/update",
        json=with_password(
            channel,
            event_id=event["event_id"],
            status=controls["e_status"],
            message=sealed["u_message"],
            severity="low",
            event_time=NOW_S + 1,
            attrs={"who": sealed["u_attr"]},
        ),
    )
    await ok(
        client,
        "POST",
        "/event/close",
        json=with_password(
            channel,
            event_id=event["event_id"],
            status="done",
            message=sealed["c_message"],
            severity="low",
            event_time=NOW_S + 2,
        ),
    )
    thing = await ok(
        client,
        "POST",
        "/thing/create",
        json=with_password(
            channel,
            observed_at=NOW_S,
            attrs={"location": sealed["t_location"], "plain": controls["t_plain"]},
        ),
    )
    await ok(
        client,
        "POST",
        "/thing/update",
        json=with_password(
            channel,
            thing_id=thing["thing_id"],
            observed_at=NOW_S + 1,
            attrs={"location": sealed["t_location2"]},
        ),
    )

    # The clients can read every value back: the markers really were sent.
    items = await poll(client, channel[0], first.auth)
    opened = json.dumps(
        [
            paired.reveal(item[key], item["type"])
            for paired in (first, second)
            for item in items
            for key in ("message", "event", "thing", "update")
            if key in item
        ],
        ensure_ascii=False,
    )
    for name, value in sealed.items():
        if name in ("m_url", "m_image", "m_meta_key"):
            assert core[name] in opened, name
        else:
            assert value in opened, name

    services.close()  # the writer commits and closes; SQLite may checkpoint the WAL
    files = _data_files(settings.data_dir)
    assert any(name.endswith(".db") for name in files), sorted(files)
    everything = b"".join(files.values())
    for name, value in core.items():
        for form in _encodings(value) | _encodings(sealed[name]):
            leaks = [file for file, data in files.items() if form in data]
            assert not leaks, f"sealed {name} ({form!r}) found in {leaks}"
    for name, value in controls.items():
        assert value.encode() in everything, f"control {name} not found: the scan is blind"


async def test_no_paired_clients_refuses_sealed_sends_and_stores_nothing(
    client: Client, services: Services
) -> None:
    channel = await sealing_channel(services)
    before = rows(services)
    refused = [
        ("/message", with_password(channel, title="secret")),
        ("/event/create", with_password(channel, **event_fields())),
        ("/thing/create", with_password(channel, observed_at=NOW_S, attrs={"location": "x"})),
    ]
    for route, body in refused:
        await fail(client, "POST", route, 409, "no_paired_clients", json=body)
    assert rows(services) == before

    # Nothing to seal, nothing lost: a thing without the sealed attr is fine.
    await ok(
        client,
        "POST",
        "/thing/create",
        json=with_password(channel, observed_at=NOW_S, attrs={"temperature": 3}),
    )
    await services.channels.update(LOCAL_OPERATOR, channel[0], e2ee=None)
    for route, body in refused:
        await ok(client, "POST", route, json=body)
    [message] = (await ok(client, "GET", path(channel[0], "/messages"), headers=basic(*channel)))[
        "messages"
    ]
    assert message["title"] == "secret" and "sealed" not in message


async def test_pushgo_ciphertext_passes_through_untouched(
    client: Client, services: Services
) -> None:
    channel = await sealing_channel(services)
    paired = await pair(client, services, channel[0])
    opaque = "AES-GCM:" + marker() + "+/=="
    await ok(
        client,
        "POST",
        "/message",
        json=with_password(channel, title="t", ciphertext=opaque),
    )
    event = await ok(
        client,
        "POST",
        "/event/create",
        json=with_password(channel, **event_fields(ciphertext=opaque)),
    )
    thing = await ok(
        client,
        "POST",
        "/thing/create",
        json=with_password(channel, observed_at=NOW_S, ciphertext=opaque),
    )
    auth = basic(*channel)
    [message] = (await ok(client, "GET", path(channel[0], "/messages"), headers=auth))["messages"]
    assert message["ciphertext"] == opaque
    assert "ciphertext" not in message["sealed"][0]["fields"]
    assert paired.reveal(message, "message")["ciphertext"] == opaque
    state = await ok(client, "GET", path(channel[0], f"/events/{event['event_id']}"), headers=auth)
    assert state["event"]["ciphertext"] == opaque
    assert state["updates"][0]["ciphertext"] == opaque
    found = await ok(client, "GET", path(channel[0], f"/things/{thing['thing_id']}"), headers=auth)
    assert found["thing"]["ciphertext"] == opaque
    assert "sealed" not in found["thing"]


# -- pre-sealed sends ------------------------------------------------------------------


async def fetch_recipients(client: Client, channel_id: str, token: str) -> dict[str, bytes]:
    keys = await ok(client, "GET", path(channel_id, "/keys"), headers=bearer(token))
    return {
        c["client_id"]: sealing.b64decode(c["public_key"], "public_key") for c in keys["clients"]
    }


@pytest.mark.parametrize("e2ee", [POLICY, None], ids=["sealing-on", "sealing-off"])
async def test_a_sender_seals_itself(
    client: Client, services: Services, channel: Channel, e2ee: str | None
) -> None:
    first = await pair(client, services, channel[0], "first")
    second = await pair(client, services, channel[0], "second")
    await services.channels.update(LOCAL_OPERATOR, channel[0], e2ee=e2ee)
    token = await channel_token(services, channel[0], Scope.PUBLISH)
    recipients = await fetch_recipients(client, channel[0], token)
    assert set(recipients) == {first.client_id, second.client_id}

    values = {"title": "Sealed by the sender", "body": "the server never saw this"}
    envelope = sealing.seal(values, recipients, channel[0], "message")
    sent = await ok(
        client,
        "POST",
        "/message",
        json={"channel_id": channel[0], "sealed": [envelope], "tags": ["self"]},
        headers=bearer(token),
    )
    [message] = (await ok(client, "GET", path(channel[0], "/messages"), headers=first.auth))[
        "messages"
    ]
    assert message["message_id"] == sent["message_id"]
    assert (message["title"], message["body"]) == ("Encrypted message", None)
    assert message["sealed"] == [envelope]  # as sent, and no envelope of the placeholder
    for paired in (first, second):
        shown = paired.reveal(message, "message")
        assert (shown["title"], shown["body"], shown["tags"]) == (*values.values(), ["self"])

    # An event create may leave out title and message when an envelope holds them.
    event_values = {"title": "Door", "message": "opened", "attrs": {"who": "Alice"}}
    event_envelope = sealing.seal(event_values, recipients, channel[0], "event")
    body = {
        "channel_id": channel[0],
        "status": "open",
        "severity": "low",
        "event_time": NOW_S,
        "attrs": {"battery": 80},
        "sealed": [event_envelope],
    }
    event = await ok(client, "POST", "/event/create", json=body, headers=bearer(token))
    detail = await ok(
        client, "GET", path(channel[0], f"/events/{event['event_id']}"), headers=first.auth
    )
    state = detail["event"]
    assert (state["title"], state["message"]) == ("Encrypted event", "Encrypted update")
    if e2ee is None:
        assert state["sealed"] == [event_envelope]
        assert state["attrs"] == {"battery": 80}
    else:  # the channel seals the attr the sender left plain, in an envelope of its own
        assert state["sealed"][0] == event_envelope and len(state["sealed"]) == 2
        assert state["sealed"][1]["fields"] == ["attrs.battery"]
        assert state["attrs"] == {}
    for paired in (first, second):
        shown = paired.reveal(state, "event")
        assert (shown["title"], shown["message"]) == ("Door", "opened")
        assert shown["attrs"] == {"who": "Alice", "battery": 80}


async def test_a_presealed_title_beside_a_plain_body_gets_the_body_sealed(
    client: Client, services: Services
) -> None:
    channel = await sealing_channel(services)
    paired = await pair(client, services, channel[0])
    recipients = {paired.client_id: paired.public_key}
    envelope = sealing.seal({"title": "mine"}, recipients, channel[0], "message")
    await ok(
        client,
        "POST",
        "/message",
        json=with_password(channel, body="plain body", sealed=[envelope]),
    )
    [message] = (await ok(client, "GET", path(channel[0], "/messages"), headers=paired.auth))[
        "messages"
    ]
    first, added = message["sealed"]
    assert first == envelope
    assert added["fields"] == ["body"]  # not the title's placeholder
    assert (message["title"], message["body"]) == ("Encrypted message", None)
    shown = paired.reveal(message, "message")
    assert (shown["title"], shown["body"]) == ("mine", "plain body")


BOTH_WAYS = {
    # route, kind, the sealed values, the plain field that repeats them
    "message-title": ("/message", "message", "title", None),
    "event-message": ("/event/create", "event", "message", None),
    "thing-attr": ("/thing/create", "thing", "attrs", "location"),
}


@pytest.mark.parametrize("case", list(BOTH_WAYS.values()), ids=list(BOTH_WAYS))
async def test_a_field_given_both_plain_and_presealed_is_not_kept_in_plain_text(
    client: Client, services: Services, settings: Settings, case: tuple[str, str, str, str | None]
) -> None:
    """On a channel whose policy seals a field, a sender that seals the field itself and
    also sends it in plain text must not get that plain text stored: the request is
    refused (invalid_sealed), or the plain value is dropped (placeholder, absent attr)."""
    route, kind, field, attr = case
    channel = await sealing_channel(services)
    paired = await pair(client, services, channel[0])
    secret = marker()
    value: Any = {attr: secret} if attr else secret
    envelope = sealing.seal({field: value}, {paired.client_id: paired.public_key}, channel[0], kind)
    bodies = {
        "/message": with_password(channel, title="t"),
        "/event/create": with_password(channel, **event_fields()),
        "/thing/create": with_password(channel, observed_at=NOW_S),
    }
    body = bodies[route] | {field: value, "sealed": [envelope]}
    before = rows(services)
    status, reply = await call(client, "POST", route, json=body)
    if status == 200:
        listing = await ok(client, "GET", path(channel[0], f"/{kind}s"), headers=paired.auth)
        [item] = listing[f"{kind}s"]
        shown = json.dumps(item)
        assert secret not in shown, f"{field} is stored in plain text beside its envelope: {shown}"
        revealed = paired.reveal(item, kind)[field]
        assert revealed == value, revealed
    else:
        assert (status, reply["error_code"]) == (400, "invalid_sealed"), reply
        assert rows(services) == before
    services.close()
    for name, data in _data_files(settings.data_dir).items():
        assert secret.encode() not in data, f"the plain {field} is stored in {name}"


def _good_envelope(kind: str = "message", fields: tuple[str, ...] = ("title",)) -> dict[str, Any]:
    _, public_key = key_pair()
    values: dict[str, Any] = {}
    for name in fields:
        if name.startswith("attrs."):
            values.setdefault("attrs", {})[name[6:]] = "v"
        else:
            values[name] = "v"
    return sealing.seal(values, {"abc123": public_key}, "0" * 26, kind)


def _changed(**members: Any) -> Callable[[], list[Any]]:
    def build() -> list[Any]:
        envelope = _good_envelope()
        for name, value in members.items():
            if value is None:
                del envelope[name]
            else:
                envelope[name] = value
        return [envelope]

    return build


def _b64_of(size: int) -> str:
    return b64(bytes(size))


BAD_SEALED: list[tuple[str, str, Callable[[], Any], str]] = [
    ("not-a-list", "/message", lambda: _good_envelope(), "invalid_json_data"),
    ("a-string", "/message", lambda: "sealed", "invalid_json_data"),
    ("list-of-strings", "/message", lambda: ["envelope"], "invalid_json_data"),
    ("five-envelopes", "/message", lambda: [_good_envelope() for _ in range(5)], "invalid_sealed"),
    ("wrong-v", "/message", _changed(v=2), "invalid_sealed"),
    ("v-as-text", "/message", _changed(v="1"), "invalid_sealed"),
    ("v-true", "/message", _changed(v=True), "invalid_sealed"),
    ("missing-v", "/message", _changed(v=None), "invalid_sealed"),
    ("extra-member", "/message", _changed(alg="x"), "invalid_sealed"),
    ("bad-base64-nonce", "/message", _changed(nonce="!!!!" * 8), "invalid_sealed"),
    ("nonce-23-bytes", "/message", _changed(nonce=_b64_of(23)), "invalid_sealed"),
    ("bad-base64-ciphertext", "/message", _changed(ciphertext="a+b/" * 10), "invalid_sealed"),
    ("ciphertext-16-bytes", "/message", _changed(ciphertext=_b64_of(16)), "invalid_sealed"),
    ("ciphertext-number", "/message", _changed(ciphertext=5), "invalid_sealed"),
    ("zero-recipients", "/message", _changed(keys={}), "invalid_sealed"),
    ("keys-a-list", "/message", _changed(keys=[_b64_of(80)]), "invalid_sealed"),
    ("client-id-not-alnum", "/message", _changed(keys={"a-b": _b64_of(80)}), "invalid_sealed"),
    ("sealed-key-79-bytes", "/message", _changed(keys={"abc": _b64_of(79)}), "invalid_sealed"),
    ("sealed-key-not-b64", "/message", _changed(keys={"abc": "#" * 107}), "invalid_sealed"),
    ("no-fields", "/message", _changed(fields=[]), "invalid_sealed"),
    ("fields-unsorted", "/message", _changed(fields=["title", "body"]), "invalid_sealed"),
    ("fields-twice", "/message", _changed(fields=["body", "body"]), "invalid_sealed"),
    ("message-seals-tags", "/message", _changed(fields=["tags"]), "invalid_sealed"),
    ("message-seals-attrs", "/message", _changed(fields=["attrs.x"]), "invalid_sealed"),
    (
        "event-seals-status",
        "/event/create",
        lambda: [_good_envelope("event", ("status",))],
        "invalid_sealed",
    ),
    (
        "event-seals-bare-attrs",
        "/event/create",
        lambda: [_good_envelope("event", ("title",)) | {"fields": ["attrs"]}],
        "invalid_sealed",
    ),
    (
        "event-attr-key-65-bytes",
        "/event/create",
        lambda: [_good_envelope("event", ("attrs." + "k" * 65,))],
        "invalid_sealed",
    ),
    (
        "thing-seals-title",
        "/thing/create",
        lambda: [_good_envelope("thing", ("title",))],
        "invalid_sealed",
    ),
    (
        "thing-zero-recipients",
        "/thing/create",
        lambda: [_good_envelope("thing", ("attrs.k",)) | {"keys": {}}],
        "invalid_sealed",
    ),
]


GOOD_SEALED = {"/message": ("title",), "/event/create": ("title",), "/thing/create": ("attrs.k",)}


@pytest.mark.parametrize(
    ("route", "build", "code"),
    [case[1:] for case in BAD_SEALED],
    ids=[case[0] for case in BAD_SEALED],
)
async def test_bad_sealed_input_changes_nothing(
    client: Client,
    services: Services,
    channel: Channel,
    route: str,
    build: Callable[[], Any],
    code: str,
) -> None:
    await pair(client, services, channel[0])
    await services.channels.update(LOCAL_OPERATOR, channel[0], e2ee=POLICY)
    bodies = {  # no title: the envelope holds it
        "/message": with_password(channel),
        "/event/create": {
            k: v for k, v in with_password(channel, **event_fields()).items() if k != "title"
        },
        "/thing/create": with_password(channel, observed_at=NOW_S),
    }
    before = rows(services)
    body = bodies[route] | {"sealed": build()}
    await fail(client, "POST", route, 400, code, json=body)
    assert rows(services) == before
    # The same request with a well-formed envelope passes: the case above was refused
    # for what it changed, not for something else.
    kind = route.split("/")[1]
    good = bodies[route] | {"sealed": [_good_envelope(kind, GOOD_SEALED[route])]}
    await ok(client, "POST", route, json=good)


# -- streams end when their credentials stop working -----------------------------------


@dataclass
class Revocation:
    """How a stream was opened, what ends it, and how its credential is refused after."""

    opened_with: str  # "client", "token" or "password"
    act: str  # what the operator does
    status: int
    code: str


REVOCATIONS = {
    "client-revoked": Revocation("client", "revoke-client", 401, "authentication_failed"),
    "client-token-revoked": Revocation("client", "revoke-token", 401, "authentication_failed"),
    "token-revoked": Revocation("token", "revoke-token", 401, "authentication_failed"),
    "password-changed": Revocation("password", "passwd", 403, "password_mismatch"),
    "channel-deleted-token": Revocation("client", "delete", 401, "authentication_failed"),
    "channel-deleted-password": Revocation("password", "delete", 404, "channel_not_found"),
}


@pytest.mark.parametrize("case", list(REVOCATIONS.values()), ids=list(REVOCATIONS))
async def test_a_stream_ends_as_revoked_when_its_credential_stops_working(
    client: Client, services: Services, channel: Channel, case: Revocation
) -> None:
    paired = await pair(client, services, channel[0])
    token_row, token = await services.tokens.create(
        LOCAL_OPERATOR, channel_id=channel[0], scopes=frozenset({Scope.SUBSCRIBE})
    )
    auth, credential_id = {
        "client": (paired.auth, paired.client_id),
        "token": (bearer(token), token_row.id),
        "password": (basic(*channel), ""),
    }[case.opened_with]
    stream = path(channel[0], "/json")
    async with client.get(stream, headers=auth) as reply:
        assert reply.status == 200, await reply.text()
        sent = await ok(client, "POST", "/message", json=with_password(channel, title="live"))
        item = await next_line(reply)
        assert item["message"]["message_id"] == sent["message_id"]

        if case.act == "revoke-client":
            await services.clients.revoke(LOCAL_OPERATOR, credential_id)
        elif case.act == "revoke-token":
            await services.tokens.revoke(LOCAL_OPERATOR, credential_id)
        elif case.act == "passwd":
            await services.channels.update(
                LOCAL_OPERATOR, channel[0], password="a brand new password"
            )
        else:
            await services.channels.delete(LOCAL_OPERATOR, channel[0])

        closing = await next_line(reply)
        assert closing == {"type": "closed", "reason": "revoked", "resume_after": item["seq"]}
        assert await asyncio.wait_for(reply.content.read(), GUARD_S) == b""
    await fail(client, "GET", stream, case.status, case.code, headers=auth)
    await fail(client, "GET", path(channel[0], "/messages"), case.status, case.code, headers=auth)
    if case.opened_with == "client":
        assert services.clients.list(LOCAL_OPERATOR) == []


async def test_revoking_one_client_leaves_the_other_streams_open(
    client: Client, services: Services, channel: Channel
) -> None:
    gone = await pair(client, services, channel[0], "gone")
    kept = await pair(client, services, channel[0], "kept")
    stream = path(channel[0], "/json")
    async with (
        client.get(stream, headers=gone.auth) as gone_reply,
        client.get(stream, headers=kept.auth) as kept_reply,
        client.get(stream, headers=basic(*channel)) as owner_reply,
    ):
        for reply in (gone_reply, kept_reply, owner_reply):
            assert reply.status == 200, await reply.text()
        await services.clients.revoke(LOCAL_OPERATOR, gone.client_id)
        closing = await next_line(gone_reply)
        assert (closing["type"], closing["reason"]) == ("closed", "revoked")
        sent = await ok(client, "POST", "/message", json=with_password(channel, title="after"))
        for reply in (kept_reply, owner_reply):
            item = await next_line(reply)
            assert item["type"] == "message", item
            assert item["message"]["message_id"] == sent["message_id"]
    assert [i["message"]["title"] for i in await poll(client, channel[0], kept.auth)] == ["after"]
    await fail(client, "GET", stream, 401, "authentication_failed", headers=gone.auth)
