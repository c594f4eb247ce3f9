"""The test vectors of docs/e2ee.md, read from the page itself.

pushgod must reproduce and open them, and a client written from the page alone (the `raw_*`
functions below: libsodium primitives and the standard library, nothing of pushgod) must open
them too, so the page is known to be enough to write a client.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import pytest

from pushgod.model import sealing
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id

DOC = Path(__file__).parents[2] / "docs" / "e2ee.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCK = re.compile(r"^```json (e2ee-[a-z]+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(marker: str) -> list[dict[str, Any]]:
    """The JSON blocks of the page fenced as ```json <marker>."""
    return [json.loads(body) for name, body in BLOCK.findall(TEXT) if name == marker]


VECTORS = blocks("e2ee-vector")
REVEALS = blocks("e2ee-reveal")
TAMPERS = blocks("e2ee-tamper")


def vector_id(vector: dict[str, Any]) -> str:
    return str(vector["name"]).split(":")[0]


CLIENTS = [
    pytest.param(vector, client, id=f"{vector_id(vector)}-{client['client_id']}")
    for vector in VECTORS
    for client in vector["clients"]
]
TAMPER_PAIRS = [(tamper, case) for tamper in TAMPERS for case in tamper["cases"]]
TAMPER_CASES = [pytest.param(tamper, case, id=case["name"]) for tamper, case in TAMPER_PAIRS]
FLIPPED_BYTES = [
    pytest.param(tamper, case, id=case["name"])
    for tamper, case in TAMPER_PAIRS
    if "ciphertext" in case.get("envelope", {})
]


def numbered(number: int) -> dict[str, Any]:
    (vector,) = [v for v in VECTORS if vector_id(v) == str(number)]
    return vector


def key_pair(client: dict[str, Any]) -> tuple[bytes, bytes]:
    return bytes.fromhex(client["secret_key_hex"]), bytes.fromhex(client["public_key_hex"])


# A client written from docs/e2ee.md alone.


class RawFailure(Exception):
    """Anything that makes the raw client refuse an envelope."""


def raw_b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_open_key(sealed_key: bytes, public_key: bytes, secret_key: bytes) -> bytes:
    """crypto_box_seal_open spelled out from the page's byte table."""
    if len(sealed_key) != 80:
        raise RawFailure("a sealed key is 80 bytes")
    ephemeral = sealed_key[:32]
    nonce = hashlib.blake2b(ephemeral + public_key, digest_size=24).digest()
    content_key: bytes = sodium.crypto_box_open_easy(sealed_key[32:], nonce, ephemeral, secret_key)
    if content_key != sodium.crypto_box_seal_open(sealed_key, public_key, secret_key):
        raise RawFailure("the byte table disagrees with crypto_box_seal_open")
    return content_key


def raw_paths(values: dict[str, Any]) -> list[str]:
    attrs = values.get("attrs", {})
    if not isinstance(attrs, dict):
        raise RawFailure("attrs must be an object")
    return sorted([name for name in values if name != "attrs"] + [f"attrs.{k}" for k in attrs])


def raw_open(
    envelope: dict[str, Any],
    client_id: str,
    secret_key: bytes,
    public_key: bytes,
    channel_id: str,
    kind: str,
) -> dict[str, Any]:
    try:
        if envelope["v"] != 1 or client_id not in envelope["keys"]:
            raise RawFailure("unknown version, or not sealed for this client")
        content_key = raw_open_key(raw_b64(envelope["keys"][client_id]), public_key, secret_key)
        fields = envelope["fields"]
        ad = f"pushgod-e2ee/v1\n{channel_id}\n{kind}\n{','.join(fields)}".encode()
        plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            raw_b64(envelope["ciphertext"]), ad, raw_b64(envelope["nonce"]), content_key
        )
        values = json.loads(plaintext.decode("utf-8"))
    except nacl.exceptions.CryptoError as error:
        raise RawFailure(str(error)) from None
    if not isinstance(values, dict) or raw_paths(values) != fields:
        raise RawFailure("the sealed fields do not match the envelope's list")
    return values


def raw_reveal(item: dict[str, Any], opened: list[dict[str, Any]]) -> dict[str, Any]:
    result = {name: value for name, value in item.items() if name != "sealed"}
    for values in opened:
        for name, value in values.items():
            if name == "attrs":  # each sealed key replaces, null deletes
                attrs = dict(result.get("attrs") or {})
                attrs.update(value)
                result["attrs"] = {k: v for k, v in attrs.items() if v is not None}
            else:
                result[name] = value
    return result


# The page holds what the tests need.


def test_the_page_has_the_vectors() -> None:
    assert len(VECTORS) >= 2
    assert {vector["kind"] for vector in VECTORS} >= {"message", "event"}
    assert any(len(vector["clients"]) >= 2 for vector in VECTORS)
    assert len(REVEALS) >= 1
    assert len(TAMPERS) >= 1
    assert len(TAMPER_PAIRS) >= 2
    assert FLIPPED_BYTES


def test_the_page_states_the_module_constants() -> None:
    assert f"`{','.join(sealing.DEFAULT_POLICY)}`" in TEXT
    for kind, placeholders in sealing.PLACEHOLDERS.items():
        for name, value in placeholders.items():
            assert f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`" in TEXT, (
                kind,
                name,
            )
    for kind, names in sealing.SEALABLE.items():
        for name in names:
            assert f"`{name}`" in TEXT, (kind, name)
    assert f"pushgod-e2ee/v{sealing.VERSION}" in TEXT
    assert f"| {sealing.NONCE_BYTES} B |" in TEXT
    assert f"entries of {sealing.SEALED_KEY_BYTES} B" in TEXT
    assert f"at most {sealing.MAX_ENVELOPES} envelopes" in TEXT
    assert f"1\u2013{sealing.MAX_RECIPIENTS} recipients" in TEXT
    assert f"17 B \u2013 {sealing.MAX_CIPHERTEXT_BYTES // 1024} KiB" in TEXT


# Vectors 1 and 2.


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_the_inputs_are_consistent(vector: dict[str, Any]) -> None:
    channel_id, kind, envelope = vector["channel_id"], vector["kind"], vector["envelope"]
    assert parse_channel_id(channel_id) == channel_id
    assert kind in sealing.KINDS
    assert sealing.check_envelope(copy.deepcopy(envelope), kind) == envelope
    assert envelope["fields"] == sealing.paths(vector["values"])
    assert raw_b64(envelope["nonce"]) == bytes.fromhex(vector["nonce_hex"])
    assert len(bytes.fromhex(vector["content_key_hex"])) == sealing.KEY_BYTES
    ad = sealing.associated_data(channel_id, kind, envelope["fields"])
    assert ad == vector["associated_data"].encode() == bytes.fromhex(vector["associated_data_hex"])
    plaintext = vector["plaintext"].encode()
    assert plaintext == bytes.fromhex(vector["plaintext_hex"])
    assert json.loads(plaintext) == vector["values"]
    assert sorted(envelope["keys"]) == sorted(client["client_id"] for client in vector["clients"])


@pytest.mark.parametrize(("vector", "client"), CLIENTS)
def test_the_public_keys_derive_from_the_secret_keys(
    vector: dict[str, Any], client: dict[str, Any]
) -> None:
    secret_key, public_key = key_pair(client)
    assert len(secret_key) == len(public_key) == sealing.PUBLIC_KEY_BYTES
    assert sodium.crypto_scalarmult_base(secret_key) == public_key
    assert bytes(nacl.public.PrivateKey(secret_key).public_key) == public_key
    assert client["public_key"] == sealing.b64encode(public_key)
    assert raw_b64(client["public_key"]) == public_key


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_sealing_with_the_documented_key_and_nonce_gives_the_documented_ciphertext(
    vector: dict[str, Any],
) -> None:
    content_key = bytes.fromhex(vector["content_key_hex"])
    recipients = {client["client_id"]: key_pair(client)[1] for client in vector["clients"]}
    envelope = sealing.seal(
        vector["values"],
        recipients,
        vector["channel_id"],
        vector["kind"],
        content_key=content_key,
        nonce=bytes.fromhex(vector["nonce_hex"]),
    )
    documented = vector["envelope"]
    assert {k: v for k, v in envelope.items() if k != "keys"} == {
        k: v for k, v in documented.items() if k != "keys"
    }
    # The page's recipe, step by step, gives the same bytes.
    raw = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        vector["plaintext"].encode(),
        vector["associated_data"].encode(),
        bytes.fromhex(vector["nonce_hex"]),
        content_key,
    )
    assert raw == raw_b64(documented["ciphertext"])
    assert len(raw) == len(vector["plaintext"].encode()) + 16
    # The sealed keys are fresh each time, and open to the content key.
    assert list(envelope["keys"]) == sorted(recipients)
    for client in vector["clients"]:
        secret_key, public_key = key_pair(client)
        sealed_key = raw_b64(envelope["keys"][client["client_id"]])
        assert sealed_key != raw_b64(documented["keys"][client["client_id"]])
        assert sodium.crypto_box_seal_open(sealed_key, public_key, secret_key) == content_key


@pytest.mark.parametrize(("vector", "client"), CLIENTS)
def test_the_documented_envelope_opens_for_each_client(
    vector: dict[str, Any], client: dict[str, Any]
) -> None:
    secret_key, public_key = key_pair(client)
    opened = sealing.open_envelope(
        vector["envelope"],
        client["client_id"],
        secret_key,
        public_key,
        vector["channel_id"],
        vector["kind"],
    )
    assert opened == vector["values"]


@pytest.mark.parametrize(("vector", "client"), CLIENTS)
def test_a_client_written_from_the_page_opens_the_documented_envelope(
    vector: dict[str, Any], client: dict[str, Any]
) -> None:
    secret_key, public_key = key_pair(client)
    envelope = vector["envelope"]
    sealed_key = raw_b64(envelope["keys"][client["client_id"]])
    assert len(sealed_key) == sealing.SEALED_KEY_BYTES
    assert raw_open_key(sealed_key, public_key, secret_key).hex() == vector["content_key_hex"]
    opened = raw_open(
        envelope, client["client_id"], secret_key, public_key, vector["channel_id"], vector["kind"]
    )
    assert opened == vector["values"]


@pytest.mark.parametrize("reveal", REVEALS, ids=lambda reveal: str(reveal["vector"]))
def test_revealing_the_documented_item(reveal: dict[str, Any]) -> None:
    vector = numbered(reveal["vector"])
    item, revealed = reveal["item"], reveal["revealed"]
    assert item["sealed"] == [vector["envelope"]]
    assert "sealed" not in revealed
    for client in vector["clients"]:
        secret_key, public_key = key_pair(client)
        context = (client["client_id"], secret_key, public_key, vector["channel_id"])
        opened = [sealing.open_envelope(e, *context, vector["kind"]) for e in item["sealed"]]
        assert sealing.reveal(item, opened) == revealed
        raw_opened = [raw_open(e, *context, vector["kind"]) for e in item["sealed"]]
        assert raw_reveal(item, raw_opened) == revealed


# Vector 3.


def tampered(tamper: dict[str, Any], case: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    vector = numbered(tamper["vector"])
    envelope = copy.deepcopy(vector["envelope"]) | case.get("envelope", {})
    assert envelope != vector["envelope"] or "channel_id" in case or "kind" in case
    return envelope, case.get("channel_id", vector["channel_id"]), case.get("kind", vector["kind"])


@pytest.mark.parametrize(("tamper", "case"), TAMPER_CASES)
def test_a_tampered_envelope_does_not_open(tamper: dict[str, Any], case: dict[str, Any]) -> None:
    vector = numbered(tamper["vector"])
    (client,) = [c for c in vector["clients"] if c["client_id"] == tamper["client_id"]]
    secret_key, public_key = key_pair(client)
    envelope, channel_id, kind = tampered(tamper, case)
    with pytest.raises(PushgodError) as failure:
        sealing.open_envelope(
            envelope, client["client_id"], secret_key, public_key, channel_id, kind
        )
    assert failure.value.code is ErrorCode.DECRYPTION_FAILED
    with pytest.raises(RawFailure):
        raw_open(envelope, client["client_id"], secret_key, public_key, channel_id, kind)


@pytest.mark.parametrize(("tamper", "case"), FLIPPED_BYTES)
def test_a_tampered_ciphertext_differs_in_one_byte(
    tamper: dict[str, Any], case: dict[str, Any]
) -> None:
    original = raw_b64(numbered(tamper["vector"])["envelope"]["ciphertext"])
    changed = raw_b64(case["envelope"]["ciphertext"])
    assert len(changed) == len(original)
    assert sum(a != b for a, b in zip(original, changed, strict=True)) == 1
