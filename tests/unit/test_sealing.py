"""Sealing: policies, envelope checks, pruning, opening and revealing (model/sealing.py).

The wire format itself is pinned by the vectors of docs/e2ee.md (test_e2ee_vectors.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushgod.model import sealing
from pushgod.model.errors import ErrorCode, PushgodError

CHANNEL = "01JD0000000000000000000000"
SECRET = bytes(range(32))
PUBLIC = sodium.crypto_scalarmult_base(SECRET)
CLIENT = "c1"


def sealed(values: dict[str, Any], kind: str = "message", **clients: bytes) -> dict[str, Any]:
    return sealing.seal(values, clients or {CLIENT: PUBLIC}, CHANNEL, kind)


def opened(envelope: dict[str, Any], kind: str = "message") -> dict[str, Any]:
    return sealing.open_envelope(envelope, CLIENT, SECRET, PUBLIC, CHANNEL, kind)


def fails(code: ErrorCode, call: Callable[[], object]) -> str:
    with pytest.raises(PushgodError) as failure:
        call()
    assert failure.value.code is code
    return failure.value.message


# Policies.


def test_the_default_policy_parses_and_prints_back() -> None:
    policy = sealing.parse_policy(sealing.DEFAULT_POLICY)
    assert policy.fields == {
        "message": {"title", "body", "url", "images", "metadata"},
        "event": {"title", "description", "message", "attrs"},
    }
    assert policy.attr_keys == {"event": None}
    assert sorted(policy.text().split(",")) == sorted(sealing.DEFAULT_POLICY)
    assert sealing.parse_policy(",".join(sealing.DEFAULT_POLICY)) == policy


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("message.title", "message.title"),
        (" message.body , message.title ,", "message.body,message.title"),
        ("thing.attrs.location,event.attrs.room,message.url", None),
        ("event.attrs.room,event.attrs.door", "event.attrs.door,event.attrs.room"),
        ("event.attrs.room,event.attrs", "event.attrs"),
        ("event.attrs,event.attrs.room", "event.attrs"),
        ("thing.attrs.b,thing.attrs.a,thing.attrs.b", "thing.attrs.a,thing.attrs.b"),
        ("event.message,message.title,thing.attrs.x", "message.title,event.message,thing.attrs.x"),
    ],
)
def test_policy_text_round_trips(text: str, canonical: str | None) -> None:
    policy = sealing.parse_policy(text)
    printed = policy.text()
    assert printed == (canonical or "message.url,event.attrs.room,thing.attrs.location")
    assert sealing.parse_policy(printed) == policy
    assert sealing.parse_policy(printed).text() == printed


def test_a_policy_names_its_attr_keys() -> None:
    policy = sealing.parse_policy("event.attrs.room,thing.attrs.location,thing.attrs.owner")
    assert policy.fields == {"event": {"attrs"}, "thing": {"attrs"}}
    assert policy.attr_keys == {
        "event": frozenset({"room"}),
        "thing": frozenset({"location", "owner"}),
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        " , ",
        "message",
        "message.",
        "message.attrs",
        "message.title.x",
        "message.severity",
        "event.status",
        "event.title.x",
        "thing.title",
        "thing.attrs",
        "Message.title",
        "mail.title",
        "message.title,event.nope",
    ],
)
def test_bad_policies_are_refused(text: str) -> None:
    fails(ErrorCode.INVALID_FIELD, lambda: sealing.parse_policy(text))


def test_split_takes_the_sealed_non_empty_fields() -> None:
    policy = sealing.parse_policy(sealing.DEFAULT_POLICY)
    values: dict[str, Any] = {
        "title": "t",
        "body": "b",
        "url": None,
        "images": (),
        "metadata": {},
        "severity": "high",
        "tags": ("x",),
    }
    assert policy.split("message", values) == {"title": "t", "body": "b"}
    assert policy.split("message", {"images": ("i",), "metadata": {"k": "v"}}) == {
        "images": ("i",),
        "metadata": {"k": "v"},
    }
    assert policy.split("thing", {"attrs": {"a": 1}}) == {}


def test_split_takes_all_attrs_or_the_named_keys() -> None:
    every = sealing.parse_policy("event.attrs")
    assert every.split("event", {"attrs": {"a": 1, "b": None}, "status": "s"}) == {
        "attrs": {"a": 1, "b": None}
    }
    assert every.split("event", {"attrs": {}}) == {}
    named = sealing.parse_policy("event.message,thing.attrs.room")
    assert named.split("event", {"attrs": {"room": 1}, "message": "m"}) == {"message": "m"}
    thing = {"attrs": {"room": "kitchen", "battery": 80, "gone": None}}
    assert named.split("thing", thing) == {"attrs": {"room": "kitchen"}}
    assert named.split("thing", {"attrs": {"battery": 80}}) == {}
    deleting = sealing.parse_policy("thing.attrs.room")
    assert deleting.split("thing", {"attrs": {"room": None}}) == {"attrs": {"room": None}}


# Sealing and opening.


def test_paths_name_fields_and_attr_keys_sorted() -> None:
    assert sealing.paths({"title": 1, "attrs": {"z": 1, "a": 2}, "body": 3}) == [
        "attrs.a",
        "attrs.z",
        "body",
        "title",
    ]
    assert sealing.paths({"attrs": {}}) == []
    assert sealing.associated_data(CHANNEL, "thing", ["attrs.a", "attrs.b"]) == (
        b"pushgod-e2ee/v1\n01JD0000000000000000000000\nthing\nattrs.a,attrs.b"
    )


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        (
            "message",
            {
                "title": "t",
                "body": "é ✓ \U0001f512",
                "url": "https://example.org",
                "images": ("https://example.org/a.png",),
                "metadata": {"k": "v"},
            },
        ),
        ("event", {"title": "t", "description": "d", "message": "m", "attrs": {"a": {"b": 1}}}),
        ("thing", {"attrs": {"location": "home", "gone": None}}),
    ],
)
def test_seal_then_open(kind: str, values: dict[str, Any]) -> None:
    other_secret = bytes(range(32, 64))
    envelope = sealed(
        values, kind, **{CLIENT: PUBLIC, "c2": sodium.crypto_scalarmult_base(other_secret)}
    )
    assert envelope["v"] == 1
    assert envelope["fields"] == sealing.paths(values)
    assert list(envelope["keys"]) == [CLIENT, "c2"]
    assert sealing.check_envelope(copy.deepcopy(envelope), kind) == envelope
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    assert opened(envelope, kind) == expected
    other = sealing.open_envelope(
        envelope, "c2", other_secret, sodium.crypto_scalarmult_base(other_secret), CHANNEL, kind
    )
    assert other == expected


def test_every_seal_draws_a_fresh_key_and_nonce() -> None:
    first, second = sealed({"title": "same"}), sealed({"title": "same"})
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]
    assert first["keys"][CLIENT] != second["keys"][CLIENT]
    plaintext = b'{"title":"same"}'
    assert len(sealing.b64decode(first["ciphertext"], "c")) == len(plaintext) + 16


def test_opening_fails_for_the_wrong_client_or_key() -> None:
    envelope = sealed({"title": "t"})
    fails(
        ErrorCode.DECRYPTION_FAILED,
        lambda: sealing.open_envelope(envelope, "c2", SECRET, PUBLIC, CHANNEL, "message"),
    )
    wrong = bytes(range(32, 64))
    fails(
        ErrorCode.DECRYPTION_FAILED,
        lambda: sealing.open_envelope(
            envelope, CLIENT, wrong, sodium.crypto_scalarmult_base(wrong), CHANNEL, "message"
        ),
    )


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": sealing.b64encode(bytes(24))},
        {"nonce": "not base64!"},
        {"ciphertext": sealing.b64encode(bytes(40))},
        {"keys": {CLIENT: sealing.b64encode(bytes(80))}},
        {"keys": {CLIENT: sealing.b64encode(bytes(79))}},
        {"fields": ["body", "title"]},
        {"fields": "title"},
    ],
)
def test_opening_fails_for_a_changed_envelope(change: dict[str, Any]) -> None:
    envelope = sealed({"title": "t"}) | change
    fails(ErrorCode.DECRYPTION_FAILED, lambda: opened(envelope))


def test_opening_checks_the_plaintext_against_fields() -> None:
    # An attr key with a comma gives the same associated data as two keys: the AEAD accepts
    # the changed list, the comparison of paths does not.
    envelope = sealed({"attrs": {"a,attrs.b": 1}}, "event")
    assert envelope["fields"] == ["attrs.a,attrs.b"]
    assert opened(envelope, "event") == {"attrs": {"a,attrs.b": 1}}
    envelope["fields"] = ["attrs.a", "attrs.b"]
    message = fails(ErrorCode.DECRYPTION_FAILED, lambda: opened(envelope, "event"))
    assert "do not match" in message


# Checking pre-sealed envelopes.


def valid(kind: str = "message") -> dict[str, Any]:
    values: dict[str, Any] = {"title": "t"} if kind != "thing" else {"attrs": {"room": "k"}}
    return sealed(values, kind)


def changed(**members: Any) -> dict[str, Any]:
    return valid() | members


def without(member: str) -> dict[str, Any]:
    envelope = valid()
    del envelope[member]
    return envelope


def recipients(count: int) -> dict[str, str]:
    return {f"c{i}": sealing.b64encode(bytes(80)) for i in range(count)}


def test_valid_envelopes_pass_the_check() -> None:
    for kind in sealing.KINDS:
        envelope = valid(kind)
        assert sealing.check_envelope(envelope, kind) is envelope
    edge = changed(
        keys=recipients(sealing.MAX_RECIPIENTS),
        ciphertext=sealing.b64encode(bytes(sealing.MAX_CIPHERTEXT_BYTES)),
        nonce=sealing.b64encode(bytes(24)) + "==",
    )
    assert sealing.check_envelope(edge, "message") is edge
    assert sealing.check_envelope(changed(ciphertext=sealing.b64encode(bytes(17))), "message")
    long_key = changed(fields=["attrs." + "k" * 64, "message"])
    assert sealing.check_envelope(long_key, "event") is long_key


@pytest.mark.parametrize(
    ("kind", "envelope"),
    [
        ("message", None),
        ("message", []),
        ("message", "envelope"),
        ("message", without("v")),
        ("message", without("keys")),
        ("message", changed(extra=1)),
        # version
        ("message", changed(v=2)),
        ("message", changed(v=0)),
        ("message", changed(v="1")),
        ("message", changed(v=True)),
        ("message", changed(v=None)),
        # fields
        ("message", changed(fields=[])),
        ("message", changed(fields="title")),
        ("message", changed(fields=["title", "body"])),
        ("message", changed(fields=["body", "body"])),
        ("message", changed(fields=["body", 1])),
        ("message", changed(fields=["severity"])),
        ("message", changed(fields=["attrs.a"])),
        ("message", changed(fields=["Title"])),
        ("event", changed(fields=["status"])),
        ("event", changed(fields=["attrs"])),
        ("event", changed(fields=["attrs."])),
        ("event", changed(fields=["attrs." + "k" * 65])),
        ("event", changed(fields=["attrs." + "é" * 33])),
        ("thing", changed(fields=["title"])),
        ("thing", changed(fields=["attrs"])),
        # nonce
        ("message", changed(nonce=sealing.b64encode(bytes(23)))),
        ("message", changed(nonce=sealing.b64encode(bytes(25)))),
        ("message", changed(nonce="not base64!")),
        ("message", changed(nonce=sealing.b64encode(bytes(24)).replace("A", "+", 1))),
        ("message", changed(nonce=sealing.b64encode(bytes(24)) + "A")),
        ("message", changed(nonce="é" * 32)),
        ("message", changed(nonce=24)),
        # ciphertext
        ("message", changed(ciphertext="")),
        ("message", changed(ciphertext=sealing.b64encode(bytes(16)))),
        ("message", changed(ciphertext=sealing.b64encode(bytes(sealing.MAX_CIPHERTEXT_BYTES + 1)))),
        ("message", changed(ciphertext="AAAA*AAA")),
        ("message", changed(ciphertext=None)),
        # keys
        ("message", changed(keys={})),
        ("message", changed(keys=[])),
        ("message", changed(keys=recipients(sealing.MAX_RECIPIENTS + 1))),
        ("message", changed(keys={"": sealing.b64encode(bytes(80))})),
        ("message", changed(keys={"c-1": sealing.b64encode(bytes(80))})),
        ("message", changed(keys={"é": sealing.b64encode(bytes(80))})),
        ("message", changed(keys={"c" * 65: sealing.b64encode(bytes(80))})),
        ("message", changed(keys={"c1": sealing.b64encode(bytes(79))})),
        ("message", changed(keys={"c1": sealing.b64encode(bytes(81))})),
        ("message", changed(keys={"c1": "not base64!"})),
        ("message", changed(keys={"c1": sealing.b64encode(bytes(80))[:-1] + "B"})),
        ("message", changed(keys={"c1": None})),
    ],
)
def test_bad_envelopes_are_refused(kind: str, envelope: object) -> None:
    fails(ErrorCode.INVALID_SEALED, lambda: sealing.check_envelope(envelope, kind))


def test_base64url_without_padding_is_read() -> None:
    assert sealing.b64decode("AAE", "x") == sealing.b64decode("AAE=", "x") == b"\x00\x01"
    assert sealing.b64decode("-_8", "x", 2) == b"\xfb\xff"
    assert sealing.b64encode(b"\xfb\xff") == "-_8"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("AAF", None),
        ("+/8", None),
        ("AA E", None),
        ("AA\nE", None),
        ("A", None),
        ("é", None),
        (b"AAE", None),
        ("AAE", 3),
    ],
)
def test_other_base64_is_refused(text: object, size: int | None) -> None:
    message = fails(ErrorCode.INVALID_SEALED, lambda: sealing.b64decode(text, "x", size))
    assert message.startswith("x ")


def test_a_request_carries_at_most_four_envelopes() -> None:
    assert sealing.parse_sealed(None, "message") is None
    assert sealing.parse_sealed([], "message") is None
    four = [valid() for _ in range(sealing.MAX_ENVELOPES)]
    assert sealing.parse_sealed(four, "message") == tuple(four)
    fails(ErrorCode.INVALID_SEALED, lambda: sealing.parse_sealed([*four, valid()], "message"))
    fails(ErrorCode.INVALID_SEALED, lambda: sealing.parse_sealed([valid("thing")], "message"))
    assert sealing.seals(four, "title")
    assert not sealing.seals(four, "body")
    assert not sealing.seals(None, "title")


# Keeping a state's envelopes.


def envelope_of(name: str, *fields: str) -> dict[str, Any]:
    return {"name": name, "fields": sorted(fields)}


def names(envelopes: list[dict[str, Any]]) -> list[str]:
    return [envelope["name"] for envelope in envelopes]


def test_accumulate_keeps_envelopes_in_order() -> None:
    assert sealing.accumulate([], []) == []
    a, b = envelope_of("a", "title"), envelope_of("b", "message")
    assert names(sealing.accumulate([a], [b])) == ["a", "b"]
    assert names(sealing.accumulate([], [a, b])) == ["a", "b"]
    assert names(sealing.accumulate([a, b], [])) == ["a", "b"]


def test_accumulate_drops_an_envelope_later_ones_cover() -> None:
    old = envelope_of("old", "attrs.room", "message")
    assert names(sealing.accumulate([old], [envelope_of("new", "message")])) == ["old", "new"]
    covering = [envelope_of("m", "message"), envelope_of("r", "attrs.room", "title")]
    assert names(sealing.accumulate([old], covering)) == ["m", "r"]
    assert names(sealing.accumulate([old, covering[0]], covering[1:])) == ["m", "r"]
    same = envelope_of("same", "attrs.room", "message")
    assert names(sealing.accumulate([old], [same])) == ["same"]
    # An earlier envelope never drops a later one.
    assert names(sealing.accumulate([envelope_of("wide", "message", "title")], [old])) == [
        "wide",
        "old",
    ]


def test_accumulate_stays_bounded_by_the_fields() -> None:
    kept: list[dict[str, Any]] = []
    for i in range(100):
        kept = sealing.accumulate(kept, [envelope_of(str(i), "message", f"attrs.k{i % 3}")])
    assert names(kept) == ["97", "98", "99"]


SCALARS = st.none() | st.integers(-5, 5) | st.text(max_size=2)
OPENED = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(max_size=2),
        "message": st.text(max_size=2),
        "attrs": st.dictionaries(st.sampled_from("abc"), SCALARS, min_size=1, max_size=3),
    },
).filter(bool)


@settings(max_examples=100)
@given(st.lists(OPENED, max_size=6), st.integers(0, 6))
def test_pruning_does_not_change_what_a_client_sees(
    changes: list[dict[str, Any]], split: int
) -> None:
    """For scalar attr values: revealing the kept envelopes is revealing them all."""
    envelopes: list[dict[str, Any]] = [
        {"fields": sealing.paths(values), "values": values} for values in changes
    ]
    kept = sealing.accumulate(envelopes[:split], envelopes[split:])
    item = {"title": "Encrypted event", "attrs": {"a": 0, "z": 1}}
    everything = sealing.reveal(item, [envelope["values"] for envelope in envelopes])
    assert sealing.reveal(item, [envelope["values"] for envelope in kept]) == everything


# Revealing.


def test_reveal_replaces_fields_and_merges_attrs_in_order() -> None:
    item = {
        "title": "Encrypted event",
        "message": "Encrypted update",
        "status": "running",
        "attrs": {"battery": 80, "room": "hall", "door": "open"},
        "sealed": ["..."],
    }
    original = copy.deepcopy(item)
    result = sealing.reveal(
        item,
        [
            {"title": "Backup", "attrs": {"room": "kitchen", "door": None}},
            {"message": "done", "attrs": {"room": "cellar", "light": {"on": True}}},
        ],
    )
    assert result == {
        "title": "Backup",
        "message": "done",
        "status": "running",
        "attrs": {"battery": 80, "room": "cellar", "light": {"on": True}},
    }
    assert item == original


def test_reveal_without_attrs_or_envelopes() -> None:
    assert sealing.reveal({"title": "x", "sealed": []}, []) == {"title": "x"}
    assert sealing.reveal({"title": "x"}, [{"attrs": {"a": 1, "b": None}}]) == {
        "title": "x",
        "attrs": {"a": 1},
    }
    assert sealing.reveal({"attrs": None}, [{"attrs": {"a": {"b": 1}}}]) == {
        "attrs": {"a": {"b": 1}}
    }
    placeholders = sealing.PLACEHOLDERS["message"]
    revealed = sealing.reveal(
        {**placeholders, "images": [], "severity": "high"},
        [{"body": "b", "images": ["i"], "title": "t"}],
    )
    assert revealed == {
        "title": "t",
        "body": "b",
        "url": None,
        "images": ["i"],
        "metadata": {},
        "severity": "high",
    }


# Regressions found in review: each failed before its fix.


def test_a_sealed_attr_value_replaces_so_pruning_keeps_what_clients_see() -> None:
    first, second = {"attrs": {"room": {"a": 1}}}, {"attrs": {"room": {"b": 2}}}
    envelopes = [{"fields": sealing.paths(v), "values": v} for v in (first, second)]
    kept = sealing.accumulate(envelopes[:1], envelopes[1:])
    assert [e["values"] for e in kept] == [second]
    assert sealing.reveal({}, [first, second]) == {"attrs": {"room": {"b": 2}}}


@pytest.mark.parametrize("name", ["title.x", "body.", "metadata.k"])
def test_only_attrs_take_a_dotted_path(name: str) -> None:
    fails(
        ErrorCode.INVALID_SEALED, lambda: sealing.check_envelope(changed(fields=[name]), "message")
    )


def test_the_version_must_be_the_integer_one() -> None:
    fails(ErrorCode.INVALID_SEALED, lambda: sealing.check_envelope(changed(v=1.0), "message"))
    fails(ErrorCode.DECRYPTION_FAILED, lambda: opened(changed(v=2)))


def test_padding_beyond_the_canonical_is_refused() -> None:
    text = sealing.b64encode(b"ab")
    assert sealing.b64decode(text + "=", "x") == b"ab"
    fails(ErrorCode.INVALID_SEALED, lambda: sealing.b64decode(text + "====", "x"))


def test_opening_refuses_keys_that_are_not_an_object() -> None:
    fails(ErrorCode.DECRYPTION_FAILED, lambda: opened(changed(keys=["c1"])))


@pytest.mark.parametrize("attrs", ["ab", 5, ["a"]])
def test_opening_refuses_attrs_that_are_not_an_object(attrs: object) -> None:
    content_key, nonce = bytes(32), bytes(24)
    fields = sorted(f"attrs.{k}" for k in ("a", "b")) if attrs == "ab" else ["attrs"]
    plaintext = json.dumps({"attrs": attrs}).encode()
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, sealing.associated_data(CHANNEL, "thing", fields), nonce, content_key
    )
    envelope = {
        "v": 1,
        "fields": fields,
        "nonce": sealing.b64encode(nonce),
        "ciphertext": sealing.b64encode(ciphertext),
        "keys": {CLIENT: sealing.b64encode(sodium.crypto_box_seal(content_key, PUBLIC))},
    }
    fails(ErrorCode.DECRYPTION_FAILED, lambda: opened(envelope, "thing"))


def test_an_empty_key_or_nonce_is_used_not_replaced() -> None:
    with pytest.raises(Exception):  # noqa: B017 - libsodium refuses a 0-byte key
        sealing.seal({"title": "t"}, {CLIENT: PUBLIC}, CHANNEL, "message", content_key=b"")


def test_a_field_set_in_plain_text_retires_the_envelopes_it_covers() -> None:
    old = {"fields": ["message"], "n": 1}
    both = {"fields": ["message", "title"], "n": 2}
    assert sealing.accumulate([old, both], [], ["message"]) == [both]
    assert sealing.accumulate([old], [{"fields": ["title"]}], ["message", "title"]) == [
        {"fields": ["title"]}
    ]
