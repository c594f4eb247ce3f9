"""`pushgod listen`: follow a channel's NDJSON stream, open sealed items, print or run a command.

A paired listener keeps its identity (X25519 key pair, client id, token) in one JSON file
per server and channel under the config directory, so later runs reuse it. The stream is
resumed after the last sequence number printed whenever it ends (a restart of the daemon,
a dropped connection), so nothing is missed or repeated; only a refused token stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pushgod.cli.output import fail
from pushgod.cli.send import default_server
from pushgod.config import Settings
from pushgod.model.ids import parse_channel_id

if TYPE_CHECKING:
    import aiohttp

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 90.0
"""Streams send a keepalive every 25 s by default: this much silence means a dead link."""
MAX_LINE_BYTES = 8 * 1024 * 1024
OBJECTS = ("message", "event", "thing", "update")
"""The parts of a stream item that may carry `sealed` envelopes (docs/e2ee.md)."""
SEALED_NOTE = (
    "pushgod: note: some items carry sealed fields, shown as placeholders; only a paired "
    "client (--pair CODE) can open them"
)
EXEC_VARIABLES = (
    "PUSHGOD_SEQ",
    "PUSHGOD_TYPE",
    "PUSHGOD_ACTION",
    "PUSHGOD_CHANNEL",
    "PUSHGOD_ID",
    "PUSHGOD_AT",
    "PUSHGOD_TITLE",
    "PUSHGOD_BODY",
    "PUSHGOD_STATUS",
    "PUSHGOD_SEVERITY",
    "PUSHGOD_URL",
    "PUSHGOD_SEALED",
    "PUSHGOD_JSON",
)

DESCRIPTION = """Receive a channel's messages, events and things as they arrive, like
`ntfy subscribe`. First pair this machine with a one-time code from `pushgod client pair
--channel ID` on the server: `pushgod listen --server URL --pair CODE CHANNEL` makes an
X25519 key pair, redeems the code and stores the key, client id and token in
$XDG_CONFIG_HOME/pushgod/clients/ (default ~/.config/pushgod; the directory mode 0700, the
file 0600); later runs without --pair reuse them, and open the fields the channel seals
(end-to-end encryption, docs/e2ee.md). --token T listens with any token that has the
subscribe scope instead, without a key: sealed fields then show as placeholders. Each item
prints as one line (--json: one JSON object per line, sealed fields opened), or runs
--exec. An item that fails to decrypt is shown with its placeholders, and an error naming
its seq goes to stderr. When the stream ends (the daemon restarts, the network drops) it
reconnects with backoff (0.5 s doubling up to 30 s) and resumes after the last item
printed, so nothing is missed or repeated. It exits 1 when the server refuses the token
(the client was revoked) or the request, 130 on Ctrl-C and 0 on SIGTERM."""

EXEC_HELP = """run CMD through the shell for each item, one at a time, instead of printing
it; its environment has PUSHGOD_SEQ (the item's sequence number), PUSHGOD_TYPE (message,
event or thing), PUSHGOD_ACTION (created, updated, closed, ...), PUSHGOD_CHANNEL,
PUSHGOD_ID (the message, event or thing id), PUSHGOD_AT (ms since 1970), PUSHGOD_TITLE,
PUSHGOD_BODY (a message's body or an event's message), PUSHGOD_STATUS (an event's status),
PUSHGOD_SEVERITY, PUSHGOD_URL, PUSHGOD_SEALED (1 when fields stayed sealed: no key, or
they failed to decrypt) and PUSHGOD_JSON (the whole item as --json prints it); a variable
that does not apply is empty. Use them quoted ("$PUSHGOD_TITLE"), never pasted into the
command"""


class Stop(Exception):
    """Ends the command with a message on stderr and exit status 1."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Retry(Exception):
    """The connection failed in a way worth retrying after a while."""

    def __init__(self, message: str, wait_s: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.wait_s = wait_s


def say(message: str) -> None:
    print(f"pushgod: {message}", file=sys.stderr, flush=True)


# -- the stored identity ---------------------------------------------------------------


def config_dir(option: str | None) -> Path:
    """--config-dir, else $XDG_CONFIG_HOME/pushgod, else ~/.config/pushgod."""
    if option:
        return Path(option)
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "pushgod"


def server_slug(server: str) -> str:
    """`http://127.0.0.1:8750` → `127.0.0.1_8750`: a file name part for one server."""
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname}:{port}{parts.path}").strip("_")


def identity_path(directory: Path, server: str, channel_id: str) -> Path:
    return directory / "clients" / f"{channel_id}@{server_slug(server)}.json"


def load_identity(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Stop(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), str) for key in ("client_id", "token", "private_key")
    ):
        raise Stop(f"{path} is not a pushgod client identity; pair again with --pair CODE")
    return data


def save_identity(path: Path, data: Mapping[str, Any]) -> None:
    """Write the file whole or not at all, readable by its owner only from the start."""
    path.parent.parent.parent.mkdir(parents=True, exist_ok=True)  # ~/.config, say
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(mode=0o700, exist_ok=True)
    path.parent.chmod(0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


@dataclass
class Identity:
    """Who listens: the token, and for a paired client its id and key pair."""

    token: str
    client_id: str | None = None
    secret_key: bytes | None = None
    public_key: bytes | None = None
    path: Path | None = None
    stored: dict[str, Any] | None = None

    @classmethod
    def of(cls, data: dict[str, Any], path: Path) -> Identity:
        import nacl.public

        from pushgod.model import sealing
        from pushgod.model.errors import PushgodError

        try:
            secret = sealing.b64decode(data["private_key"], "private_key", 32)
        except PushgodError:
            raise Stop(f"{path} holds no valid private key; pair again with --pair CODE") from None
        public = bytes(nacl.public.PrivateKey(secret).public_key)
        return cls(data["token"], data["client_id"], secret, public, path, data)


async def pair(session: aiohttp.ClientSession, server: str, code: str, name: str) -> dict[str, Any]:
    """Redeem the code for a new key pair: what the identity file stores."""
    import nacl.public

    from pushgod.model import sealing

    key = nacl.public.PrivateKey.generate()
    public_key = sealing.b64encode(bytes(key.public_key))
    body = {"code": code, "public_key": public_key, "name": name}
    reply = await request_json(session, "POST", f"{server}/api/v1/pair", json=body)
    data = reply["data"]
    return {
        "server": server,
        "channel_id": data["channel_id"],
        "client_id": data["client_id"],
        "name": data.get("name", name),
        "token": data["token"],
        "private_key": sealing.b64encode(bytes(key)),
        "public_key": public_key,
    }


async def request_json(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    """A JSON request that must succeed; anything else stops the command."""
    import aiohttp

    server = url.split("/api/", 1)[0]
    try:
        async with session.request(method, url, **kwargs) as reply:
            text = await reply.text()
            status = reply.status
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise Stop(f"cannot reach {server}: {str(error) or type(error).__name__}") from None
    try:
        envelope = json.loads(text)
    except ValueError:
        raise Stop(f"{server} answered HTTP {status} without JSON; is it pushgod?") from None
    if not isinstance(envelope, dict) or not envelope.get("success"):
        message, code = error_of(envelope, status)
        raise Stop(message, code)
    return envelope


def error_of(envelope: object, status: int) -> tuple[str, str | None]:
    """The message and code of an error envelope (whatever shape it has)."""
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), str):
        code = envelope.get("error_code")
        return envelope["error"], code if isinstance(code, str) else None
    return f"the server answered HTTP {status}", None


# -- opening and showing items ---------------------------------------------------------


def open_item(item: dict[str, Any], identity: Identity) -> tuple[dict[str, Any], list[str], bool]:
    """The item with its sealed parts opened: (item, errors, whether some stay sealed).

    A part any of whose envelopes fails to open keeps its placeholders and `sealed`
    (never part of its plaintext); the error says why.
    """
    from pushgod.model import sealing
    from pushgod.model.errors import PushgodError

    result = dict(item)
    errors: list[str] = []
    still_sealed = False
    kind = str(item.get("type"))
    parts = [key for key in OBJECTS if isinstance(item.get(key), dict)]
    holders: list[tuple[str | None, dict[str, Any]]] = [(key, item[key]) for key in parts]
    if not holders:
        holders = [(None, item)]  # sealed at the top level, should a server send it so
    for key, part in holders:
        envelopes = part.get("sealed")
        if not envelopes:
            continue
        if identity.secret_key is None or identity.public_key is None:
            still_sealed = True
            continue
        try:
            if not isinstance(envelopes, list):
                raise TypeError("sealed is not a list")
            opened = [
                sealing.open_envelope(
                    envelope,
                    identity.client_id or "",
                    identity.secret_key,
                    identity.public_key,
                    str(item.get("channel_id")),
                    kind,
                )
                for envelope in envelopes
            ]
        except (PushgodError, AttributeError, TypeError, KeyError, ValueError) as error:
            still_sealed = True
            reason = error.message if isinstance(error, PushgodError) else "malformed envelope"
            errors.append(reason)
            continue
        revealed = sealing.reveal(part, opened)
        if key is None:
            result = revealed
        else:
            result[key] = revealed
    return result, errors, still_sealed


def reveal(item: dict[str, Any], identity: Identity) -> tuple[dict[str, Any], bool, bool]:
    """`open_item`, saying on stderr why an item failed to open: (item, sealed, failed)."""
    revealed, errors, sealed = open_item(item, identity)
    if errors:  # one line per item, though its state and its update may both fail
        reasons = "; ".join(dict.fromkeys(errors))
        say(
            f"seq {item.get('seq')}: could not decrypt (decryption_failed): {reasons}; shown sealed"
        )
    return revealed, sealed, bool(errors)


def main_part(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The message, event or thing an item is about (its state after the change)."""
    part = item.get(str(item.get("type")))
    return part if isinstance(part, dict) else item


def text(value: object) -> str:
    """One line of terminal-safe text: no control characters from the sender."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    value = " ⏎ ".join(value.splitlines())
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in value)


def describe(item: Mapping[str, Any], sealed: bool) -> str:
    """`[2026-11-21 10:00:00] message (high): Title — body <url>`, one line per item."""
    at = item.get("at")
    when = (
        datetime.fromtimestamp(at / 1000).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(at, int)
        else "?"
    )
    kind = text(item.get("type"))
    part = main_part(item)
    severity = part.get("severity")
    head = kind if kind == "message" else f"{kind} {text(item.get('action'))}"
    if severity and severity != "normal":
        head += f" ({text(severity)})"
    if kind == "message":
        line = text(part.get("title"))
        if part.get("body"):
            line += f" — {text(part.get('body'))}"
        if part.get("url"):
            line += f" <{text(part.get('url'))}>"
    elif kind == "event":
        line = (
            f"{text(part.get('title'))} — {text(part.get('status'))}: {text(part.get('message'))}"
        )
    else:
        line = text(part.get("title") or part.get("thing_id"))
        if part.get("state") not in (None, "active"):
            line += f" [{text(part.get('state'))}]"
        attrs = part.get("attrs")
        if isinstance(attrs, dict) and attrs:
            line += " — " + ", ".join(f"{text(k)}={text(v)}" for k, v in attrs.items())
    suffix = " [sealed]" if sealed else ""
    return f"[{when}] {head}: {line}{suffix}"


def exec_environ(item: Mapping[str, Any], sealed: bool) -> dict[str, str]:
    """The PUSHGOD_* variables of --exec (see EXEC_HELP); all set, empty when not applicable."""
    kind = item.get("type")
    part = main_part(item)
    values: dict[str, object] = {
        "PUSHGOD_SEQ": item.get("seq"),
        "PUSHGOD_TYPE": kind,
        "PUSHGOD_ACTION": item.get("action"),
        "PUSHGOD_CHANNEL": item.get("channel_id"),
        "PUSHGOD_ID": part.get(f"{kind}_id"),
        "PUSHGOD_AT": item.get("at"),
        "PUSHGOD_TITLE": part.get("title"),
        "PUSHGOD_BODY": part.get("body") if kind == "message" else part.get("message"),
        "PUSHGOD_STATUS": part.get("status"),
        "PUSHGOD_SEVERITY": part.get("severity"),
        "PUSHGOD_URL": part.get("url"),
        "PUSHGOD_SEALED": "1" if sealed else "",
        "PUSHGOD_JSON": json.dumps(item, ensure_ascii=False),
    }
    environ: dict[str, str] = {}
    for name, value in values.items():
        if value is None or isinstance(value, dict | list):
            value = "" if value is None else json.dumps(value, ensure_ascii=False)
        environ[name] = str(value).replace("\0", "")
    return environ


# -- the stream ------------------------------------------------------------------------


class Follower:
    """Follows one channel's NDJSON stream and hands each new item to `deliver`, in order.

    It starts after `since` (default: the newest item now), reconnects with backoff when
    the stream ends and resumes after the last item delivered, so nothing is missed or
    repeated; only a refused token (Stop) ends `run`. `pushgod listen` and the
    `pushgod mcp-channel` bridge differ only in what `deliver` does.
    """

    stop_hint = ""
    """Said after "listening to channel ..." on the first connection."""

    def __init__(
        self, server: str, channel_id: str, identity: Identity, since: str | None = None
    ) -> None:
        self.server = server
        self.channel_id = channel_id
        self.identity = identity
        self.since = since
        self.last_seq: int | None = None
        self.connects = 0
        self.connected = False
        self.problem: str | None = None
        """Why the last connection ended or failed; None once connected again."""

    async def deliver(self, item: dict[str, Any]) -> None:
        """Handle one new item (it has an int `seq`); its seq counts as done once this returns."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"{self.server}/api/v1/channels/{self.channel_id}/json"

    async def run(self) -> int:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
        )
        delay = BACKOFF_MIN_S
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                connects, at_least = self.connects, 0.0
                try:
                    problem = await self.follow(session)
                except Retry as retry:
                    problem, at_least = retry.message, retry.wait_s
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    problem = str(error) or type(error).__name__
                if self.connects != connects:
                    delay = BACKOFF_MIN_S  # it was connected: a new outage starts over
                self.problem = problem
                wait = max(delay, at_least)
                say(f"{problem}; reconnecting in {wait:g} s")
                await asyncio.sleep(wait)
                delay = min(wait * 2, BACKOFF_MAX_S)

    async def open(
        self, session: aiohttp.ClientSession, params: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """The stream's response once the server accepted it; errors stop or retry."""
        headers = {"Authorization": f"Bearer {self.identity.token}"}
        try:
            reply = await session.get(self.url, params=params, headers=headers)
        except OSError as error:  # aiohttp's connection errors are OSErrors too
            raise Retry(f"cannot reach {self.server}: {error}") from None
        if reply.status == 200:
            return reply
        try:
            envelope: object = json.loads(await reply.text())
        except ValueError:
            envelope = None
        finally:
            reply.release()
        message, code = error_of(envelope, reply.status)
        if reply.status in (401, 403):
            if self.identity.client_id is None:
                raise Stop(f"the server refused the token: {message}", code)
            raise Stop(
                f"the server refused the token: {message}; the client was revoked, or the "
                "token expired or is not for this channel. Pair again: pushgod client pair "
                "on the server, then pushgod listen --pair CODE",
                code,
            )
        if reply.status == 429 or reply.status >= 500:
            retry_after = reply.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else 0.0
            raise Retry(f"the server answered HTTP {reply.status}: {message}", wait)
        raise Stop(message, code)

    async def position(self, session: aiohttp.ClientSession) -> int:
        """The newest item's sequence number (0 when none): where "only new items" starts,
        so that a connection lost before any item arrives resumes without a gap."""
        reply = await self.open(session, {"since": "latest", "poll": "1"})
        newest = 0
        async with reply:
            async for item in self.lines(reply):
                if isinstance(item.get("seq"), int):
                    newest = max(newest, item["seq"])
        return newest

    async def follow(self, session: aiohttp.ClientSession) -> str:
        """Read the stream until it ends; why it ended. Raises Stop or Retry."""
        if self.last_seq is None and self.since is None:
            self.last_seq = await self.position(session)
        since = str(self.last_seq) if self.last_seq is not None else self.since
        reply = await self.open(session, {"since": since} if since else {})
        async with reply:
            self.connects += 1
            self.connected, self.problem = True, None
            if self.connects == 1:
                say(f"listening to channel {self.channel_id} at {self.server}{self.stop_hint}")
            else:
                say(
                    f"reconnected to {self.server}"
                    + (f"; resuming after seq {since}" if since else "")
                )
            try:
                return await self.read(reply)
            finally:
                self.connected = False

    async def read(self, reply: aiohttp.ClientResponse) -> str:
        """Deliver the stream's new items until it ends; why it ended. Raises Stop or Retry."""
        async for item in self.lines(reply):
            kind = item.get("type")
            if kind == "keepalive":
                continue
            if kind == "closed":
                reason = text(item.get("reason"))
                if reason == "revoked":
                    raise Stop(
                        "the server ended the stream: this client was revoked (or its "
                        "token expired, or the channel was deleted). Pair again: pushgod "
                        "client pair on the server, then pushgod listen --pair CODE",
                        "revoked",
                    )
                return f"the server closed the stream ({reason})"
            seq = item.get("seq")
            if not isinstance(seq, int):
                continue
            if self.last_seq is not None and seq <= self.last_seq:
                continue  # already shown (a replay overlapping what was live)
            await self.deliver(item)
            self.last_seq = seq
        return "the server ended the stream"

    async def lines(self, reply: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        """The JSON objects of an NDJSON body, one per line."""
        buffer = bytearray()
        async for chunk in reply.content.iter_any():
            buffer += chunk
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    say("skipped a line of the stream that is not JSON")
                    continue
                if isinstance(item, dict):
                    yield item
            if len(buffer) > MAX_LINE_BYTES:
                raise Retry(f"a stream line exceeds {MAX_LINE_BYTES} bytes")


class Listener(Follower):
    """`pushgod listen`: prints each item, or runs --exec for it."""

    stop_hint = " (Ctrl-C to stop)"

    def __init__(
        self,
        server: str,
        channel_id: str,
        identity: Identity,
        since: str | None,
        as_json: bool,
        command: str | None,
    ) -> None:
        super().__init__(server, channel_id, identity, since)
        self.as_json = as_json
        self.command = command
        self.noted_sealed = False

    async def deliver(self, item: dict[str, Any]) -> None:
        revealed, sealed, failed = reveal(item, self.identity)
        seq = item["seq"]
        if sealed and not failed and not self.noted_sealed:
            self.noted_sealed = True
            print(SEALED_NOTE, file=sys.stderr, flush=True)
        if self.command is None:
            line = json.dumps(revealed, ensure_ascii=False) if self.as_json else None
            try:
                print(line or describe(revealed, sealed), flush=True)
            except BrokenPipeError:
                # Whoever read our output is gone (`| head`): stop, and keep Python from
                # failing again on the flush at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise Stop("stdout was closed") from None
            return
        try:
            process = await asyncio.create_subprocess_shell(
                self.command, env=os.environ | exec_environ(revealed, sealed)
            )
            status = await process.wait()
        except OSError as error:
            say(f"seq {seq}: cannot run the --exec command: {error}")
            return
        if status != 0:
            say(f"seq {seq}: --exec command exited with status {status}")


# -- the command -----------------------------------------------------------------------


def check_server(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Stop(f"--server must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")


def stored_server(directory: Path, channel_id: str) -> str | None:
    """The server of the one identity stored for the channel, if there is exactly one."""
    found = sorted((directory / "clients").glob(f"{channel_id}@*.json"))
    if len(found) != 1:
        return None
    data = load_identity(found[0])
    server = data.get("server") if data else None
    return server if isinstance(server, str) else None


def server_of(
    option: str | None, token: str | None, directory: Path, channel_id: str, settings: Settings
) -> str:
    """--server, else (without --token) the server of the one identity stored for the
    channel, else public_base_url, else the listen address."""
    server = option or (None if token else stored_server(directory, channel_id))
    return check_server(server or default_server(settings))


def stored_identity(
    directory: Path,
    server: str,
    channel_id: str,
    how: str = "pass --pair CODE (pushgod client pair on the server prints one) or --token T",
) -> Identity:
    """The identity stored for the server and channel; Stop, saying `how` to get one, if none."""
    path = identity_path(directory, server, channel_id)
    stored = load_identity(path)
    if stored is None:
        raise Stop(f"this machine is not paired with channel {channel_id} at {server}: {how}")
    return Identity.of(stored, path)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    import aiohttp

    channel_id = parse_channel_id(args.channel)
    directory = config_dir(args.config_dir)
    server = server_of(args.server, args.token, directory, channel_id, settings)
    path = identity_path(directory, server, channel_id)
    since = args.since
    if args.token is not None:
        if since == "resume":
            raise Stop("--since resume needs a paired client (its last seq is stored)")
        identity = Identity(args.token)
    elif args.pair is not None:
        timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S * 2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            name = args.name or socket.gethostname()[:64] or "pushgod listen"
            data = await pair(session, server, args.pair, name)
        previous = load_identity(path) if data["channel_id"] == channel_id else None
        path = identity_path(directory, server, data["channel_id"])
        save_identity(path, data)
        say(f"paired as client {data['client_id']} ({data['name']}); key and token in {path}")
        if previous is not None:
            say(
                f"the previous client {previous['client_id']} of this machine stays paired "
                f"until revoked: pushgod client revoke {previous['client_id']}"
            )
        if data["channel_id"] != channel_id:
            raise Stop(
                f"the code paired channel {data['channel_id']}, not {channel_id}; listen with "
                f"pushgod listen --server {server} {data['channel_id']}"
            )
        identity = Identity.of(data, path)
    else:
        identity = stored_identity(directory, server, channel_id)
    if since == "resume":
        last = identity.stored.get("last_seq") if identity.stored else None
        since = str(last) if isinstance(last, int) else None
        if since is None:
            say("no last seq is stored yet (it is saved when listen stops): only new items")
    listener = Listener(server, channel_id, identity, since, args.json, args.exec)
    try:
        return await listener.run()
    finally:
        remember(listener)


def remember(listener: Listener) -> None:
    """Store the last seq shown in the identity file, for --since resume."""
    identity = listener.identity
    if identity.path is None or identity.stored is None or listener.last_seq is None:
        return
    if identity.stored.get("last_seq") == listener.last_seq:
        return
    with contextlib.suppress(OSError):
        save_identity(identity.path, {**identity.stored, "last_seq": listener.last_seq})


async def run_until_stopped(work: Coroutine[Any, Any, int]) -> int:
    """`work`, ended by SIGTERM with status 0 (Ctrl-C ends it through asyncio.run: 130)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await work
    except asyncio.CancelledError:
        if terminated:
            return 0
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def listen(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(run_until_stopped(run(args, settings)))
    except Stop as stop:
        return fail(stop.message, stop.code)


def add_parser(parser: argparse.ArgumentParser) -> None:
    """The options of `pushgod listen`."""
    parser.description = DESCRIPTION
    parser.add_argument(
        "--server",
        metavar="URL",
        help="the server's URL (default: the server of the one identity stored for CHANNEL, "
        "else public_base_url, else the listen address)",
    )
    credential = parser.add_mutually_exclusive_group()
    credential.add_argument(
        "--pair",
        metavar="CODE",
        help="pair this machine with the one-time code `pushgod client pair` printed, and "
        "store its identity (replacing one stored for the same server and channel)",
    )
    credential.add_argument(
        "--token",
        metavar="T",
        help="listen with this token (subscribe scope) instead of a stored identity; sealed "
        "fields stay sealed",
    )
    parser.add_argument(
        "--name", help="with --pair: the client's name in `client list` (default: hostname)"
    )
    parser.add_argument(
        "--since",
        metavar="S",
        help="first replay: all, latest, a seq, a unix timestamp, a duration like 10m, or "
        "resume (after the last item a paired listen showed; saved when it stops). "
        "Default: only new items",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each item as one JSON object per line, sealed fields opened",
    )
    parser.add_argument("--exec", metavar="CMD", help=EXEC_HELP)
    parser.add_argument(
        "--config-dir",
        metavar="DIR",
        help="where identities are stored (default: $XDG_CONFIG_HOME/pushgod, else "
        "~/.config/pushgod)",
    )
    parser.add_argument("channel", metavar="CHANNEL", help="the channel id")
