"""`pushgod listen` against the real daemon: pairing, opening sealed items, resuming
across a restart, --exec, tampered envelopes, revocation and bad inputs.

The listener runs as its own process; every wait reads its output (or its exit), with a
timeout only as a guard against a hang.
"""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pushgod.model import sealing

from .harness import READY_TIMEOUT_S, Daemon, basic_auth, free_port, read_messages

GUARD_S = 30.0
"""How long a wait may take before the test fails: a guard against hangs, never a pause."""


class Listener:
    """A `pushgod listen` process and the lines it printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.errors: list[str] = []

    @classmethod
    async def start(cls, daemon: Daemon, *args: str) -> Listener:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pushgod",
            "listen",
            "--server",
            daemon.url,
            *args,
            env=daemon.environ(),
            cwd=daemon.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def line(self) -> str:
        """The next line on stdout."""
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), GUARD_S)
        assert raw, f"the listener closed its stdout; stderr:\n{await self.rest_of_stderr()}"
        return raw.decode().rstrip("\n")

    async def item(self) -> dict[str, Any]:
        """The next item printed with --json."""
        item: dict[str, Any] = json.loads(await self.line())
        return item

    async def stderr_until(self, text: str) -> str:
        """Read stderr up to the first line containing `text`; that line."""
        assert self.process.stderr is not None
        while True:
            raw = await asyncio.wait_for(self.process.stderr.readline(), GUARD_S)
            assert raw, f"stderr ended before {text!r}: {self.errors}"
            line = raw.decode().rstrip("\n")
            self.errors.append(line)
            if text in line:
                return line

    async def rest_of_stderr(self) -> str:
        assert self.process.stderr is not None
        rest = await asyncio.wait_for(self.process.stderr.read(), GUARD_S)
        self.errors += rest.decode().splitlines()
        return "\n".join(self.errors)

    async def exit(self) -> int:
        return await asyncio.wait_for(self.process.wait(), GUARD_S)

    async def interrupt(self) -> int:
        """Ctrl-C: the status it exits with."""
        self.process.send_signal(signal.SIGINT)
        return await self.exit()

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), GUARD_S)


@pytest.fixture
async def listeners() -> Any:
    """Start listeners with `await listeners(daemon, *args)`; all are ended afterwards."""
    started: list[Listener] = []

    async def start(daemon: Daemon, *args: str) -> Listener:
        listener = await Listener.start(daemon, *args)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.close()


async def curl_send(daemon: Daemon, body: dict[str, Any], route: str = "message") -> str:
    """Send with a real curl; the new message's (or event's) id."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        f"{daemon.url}/{route}",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        json.dumps(body),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), GUARD_S)
    reply = json.loads(out)
    assert reply["success"], reply
    return str(reply["data"].get("message_id") or reply["data"].get("event_id"))


def paired_channel(daemon: Daemon, name: str) -> tuple[str, str, str]:
    """A channel sealing its default fields, and a pairing code: (id, password, code)."""
    channel_id, password = daemon.create_channel(name)
    daemon.cli_json("channel", "e2ee", channel_id, "--on")
    code = daemon.cli_json("client", "pair", "--channel", channel_id)["code"]
    return channel_id, password, str(code)


def identity_file(config: Path, daemon: Daemon, channel_id: str) -> Path:
    return config / "clients" / f"{channel_id}@127.0.0.1_{daemon.run.port}.json"


async def test_pair_listen_decrypt_and_resume_across_a_restart(
    daemon: Daemon, listeners: Any, tmp_path: Path
) -> None:
    channel_id, password, code = paired_channel(daemon, "listen")
    config = tmp_path / "config"
    listener = await listeners(
        daemon, "--pair", code, "--json", "--config-dir", str(config), channel_id
    )
    await listener.stderr_until("listening")
    auth = {"channel_id": channel_id, "password": password}

    message_id = await curl_send(daemon, auth | {"title": "Backup finished", "body": "Größe ✓"})
    first = await listener.item()
    assert first["type"] == "message"
    assert first["message"]["message_id"] == message_id
    assert first["message"]["title"] == "Backup finished"
    assert first["message"]["body"] == "Größe ✓"
    assert "sealed" not in first["message"]

    async with aiohttp.ClientSession() as session:
        [stored] = await read_messages(session, daemon.url, channel_id, password)
    assert stored["title"] == "Encrypted message"
    assert stored["body"] is None
    assert stored["sealed"], "the daemon keeps only the envelope"

    identity = identity_file(config, daemon, channel_id)
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    assert stat.S_IMODE(identity.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    saved = json.loads(identity.read_text())
    assert saved["channel_id"] == channel_id
    assert saved["server"] == daemon.url
    assert saved["token"].startswith("pgd_")
    assert len(sealing.b64decode(saved["private_key"], "private_key")) == 32

    port = daemon.run.port
    daemon.stop(signal.SIGTERM)
    await listener.stderr_until("closed the stream (shutdown)")
    daemon.spawn(port=port)  # the same port: the listener reconnects to the same URL
    daemon.wait_notify("READY=1", READY_TIMEOUT_S)
    titles = ["second", "third", "fourth"]
    for title in titles[:2]:
        await curl_send(daemon, auth | {"title": title, "body": f"{title} body"})
    await listener.stderr_until("reconnected")
    await curl_send(daemon, auth | {"title": titles[2], "body": f"{titles[2]} body"})
    after = [await listener.item() for _ in titles]
    assert [item["message"]["title"] for item in after] == titles  # once each, in order
    assert [item["message"]["body"] for item in after] == [f"{t} body" for t in titles]
    seqs = [first["seq"]] + [item["seq"] for item in after]
    assert seqs == sorted(set(seqs))

    assert await listener.interrupt() == 130
    assert "Traceback" not in await listener.rest_of_stderr()
    assert json.loads(identity.read_text())["last_seq"] == seqs[-1]


async def test_exec_runs_the_command_per_item_with_its_variables(
    daemon: Daemon, listeners: Any, tmp_path: Path
) -> None:
    channel_id, password = daemon.create_channel("exec")
    token = daemon.cli_json("token", "create", "--channel", channel_id, "--scope", "subscribe")
    show = (
        f"{sys.executable} -c 'import json, os; "
        'print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("PUSHGOD_")}))'
        "'"
    )
    listener = await listeners(
        daemon, "--token", token["token"], "--config-dir", str(tmp_path), "--exec", show, channel_id
    )
    await listener.stderr_until("listening")
    tricky = 'it\'s "$HOME" $(false) `id`'
    auth = {"channel_id": channel_id, "password": password}
    message_id = await curl_send(
        daemon, auth | {"title": tricky, "body": "line 1\nline 2", "severity": "high"}
    )
    event_id = await curl_send(
        daemon,
        auth
        | {
            "title": "Nightly backup",
            "status": "running",
            "message": "started",
            "severity": "normal",
            "event_time": 1767225600,
        },
        "event/create",
    )
    message = json.loads(await listener.line())
    event = json.loads(await listener.line())

    assert message["PUSHGOD_TYPE"] == "message"
    assert message["PUSHGOD_ACTION"] == "created"
    assert message["PUSHGOD_CHANNEL"] == channel_id
    assert message["PUSHGOD_ID"] == message_id
    assert message["PUSHGOD_TITLE"] == tricky  # a value, never part of the command
    assert message["PUSHGOD_BODY"] == "line 1\nline 2"
    assert message["PUSHGOD_SEVERITY"] == "high"
    assert message["PUSHGOD_URL"] == ""
    assert message["PUSHGOD_SEALED"] == ""
    whole = json.loads(message["PUSHGOD_JSON"])
    assert str(whole["seq"]) == message["PUSHGOD_SEQ"]
    assert whole["message"]["title"] == tricky

    assert event["PUSHGOD_TYPE"] == "event"
    assert event["PUSHGOD_ID"] == event_id
    assert event["PUSHGOD_TITLE"] == "Nightly backup"
    assert event["PUSHGOD_BODY"] == "started"
    assert event["PUSHGOD_STATUS"] == "running"
    assert int(event["PUSHGOD_SEQ"]) > int(message["PUSHGOD_SEQ"])


async def test_a_tampered_envelope_is_reported_and_the_next_item_opens(
    daemon: Daemon, listeners: Any, tmp_path: Path
) -> None:
    channel_id, password, code = paired_channel(daemon, "tamper")
    listener = await listeners(
        daemon, "--pair", code, "--json", "--config-dir", str(tmp_path), channel_id
    )
    await listener.stderr_until("listening")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{daemon.url}/api/v1/channels/{channel_id}/keys",
            headers=basic_auth(channel_id, password),
        ) as reply,
    ):
        assert reply.status == 200, await reply.text()
        [client] = (await reply.json())["data"]["clients"]
    recipients = {client["client_id"]: sealing.b64decode(client["public_key"], "public_key")}
    envelope = sealing.seal(
        {"title": "do not show", "body": "secret"}, recipients, channel_id, "message"
    )
    ciphertext = bytearray(sealing.b64decode(envelope["ciphertext"], "ciphertext"))
    ciphertext[0] ^= 1
    envelope["ciphertext"] = sealing.b64encode(bytes(ciphertext))
    auth = {"channel_id": channel_id, "password": password}
    await curl_send(daemon, auth | {"sealed": [envelope]})
    await curl_send(daemon, auth | {"title": "fine", "body": "after the bad one"})

    bad = await listener.item()
    error = await listener.stderr_until("decryption_failed")
    assert f"seq {bad['seq']}" in error
    assert "could not decrypt (decryption_failed)" in error
    assert bad["message"]["title"] == "Encrypted message"  # its placeholder
    assert bad["message"]["body"] is None
    assert "do not show" not in json.dumps(bad) and "secret" not in json.dumps(bad)
    good = await listener.item()
    assert good["seq"] > bad["seq"]
    assert (good["message"]["title"], good["message"]["body"]) == ("fine", "after the bad one")


async def test_revoking_the_client_ends_a_running_listener(
    daemon: Daemon, listeners: Any, tmp_path: Path
) -> None:
    channel_id, _, code = paired_channel(daemon, "revoke")
    listener = await listeners(
        daemon, "--pair", code, "--json", "--config-dir", str(tmp_path), channel_id
    )
    await listener.stderr_until("listening")
    client_id = json.loads(identity_file(tmp_path, daemon, channel_id).read_text())["client_id"]

    revoked = await asyncio.to_thread(daemon.cli, "client", "revoke", client_id)
    assert revoked.returncode == 0, revoked.stderr

    assert await listener.exit() == 1
    errors = await listener.rest_of_stderr()
    assert "revoked" in errors
    assert "Traceback" not in errors


async def test_a_stored_identity_resumes_and_stops_once_revoked(
    daemon: Daemon, listeners: Any, tmp_path: Path
) -> None:
    channel_id, password, code = paired_channel(daemon, "stored")
    config = ("--config-dir", str(tmp_path))
    auth = {"channel_id": channel_id, "password": password}
    first = await listeners(daemon, "--pair", code, "--json", *config, channel_id)
    await first.stderr_until("listening")
    await curl_send(daemon, auth | {"title": "one"})
    seen = await first.item()
    assert await first.interrupt() == 130

    await curl_send(daemon, auth | {"title": "two", "body": "sent while no one listened"})
    again = await listeners(daemon, "--since", "resume", "--json", *config, channel_id)
    missed = await again.item()
    assert missed["seq"] > seen["seq"]
    assert missed["message"]["title"] == "two"  # opened with the stored key
    assert await again.interrupt() == 130

    client_id = json.loads(identity_file(tmp_path, daemon, channel_id).read_text())["client_id"]
    revoked = await asyncio.to_thread(daemon.cli, "client", "revoke", client_id)
    assert revoked.returncode == 0, revoked.stderr
    refused = await listeners(daemon, *config, channel_id)
    assert await refused.exit() == 1
    errors = await refused.rest_of_stderr()
    assert "refused the token" in errors
    assert "authentication_failed" in errors
    assert "Traceback" not in errors


def test_a_wrong_pairing_code_fails(daemon: Daemon, tmp_path: Path) -> None:
    channel_id, _ = daemon.create_channel("wrong code")
    done = daemon.cli(
        "listen",
        "--server",
        daemon.url,
        "--pair",
        "AAAAA-BBBBB",
        "--config-dir",
        str(tmp_path / "config"),
        channel_id,
    )
    assert done.returncode == 1
    assert "pairing_code_invalid" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "config").exists()


def test_an_unreachable_server_fails_clearly(daemon: Daemon, tmp_path: Path) -> None:
    channel_id, _ = daemon.create_channel("unreachable")
    server = f"http://127.0.0.1:{free_port()}"
    done = daemon.cli(
        "listen",
        "--server",
        server,
        "--pair",
        "AAAAA-BBBBB",
        "--config-dir",
        str(tmp_path),
        channel_id,
    )
    assert done.returncode == 1
    assert f"cannot reach {server}" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_token_fails(daemon: Daemon, tmp_path: Path) -> None:
    channel_id, _ = daemon.create_channel("bad token")
    done = daemon.cli(
        "listen",
        "--server",
        daemon.url,
        "--token",
        "pgd_nonsense",
        "--config-dir",
        str(tmp_path),
        channel_id,
    )
    assert done.returncode == 1
    assert "authentication_failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_listening_without_an_identity_says_how_to_pair(daemon: Daemon, tmp_path: Path) -> None:
    channel_id, _ = daemon.create_channel("unpaired")
    done = daemon.cli("listen", "--server", daemon.url, "--config-dir", str(tmp_path), channel_id)
    assert done.returncode == 1
    assert "--pair CODE" in done.stderr
