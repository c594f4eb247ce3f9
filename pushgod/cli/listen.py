"""`pushgod listen`: follow a channel's NDJSON stream, open sealed items, print or run a command.

The options, how an item prints (one line, or --json) and the environment of --exec; the
stored identity, the stream with its resume and backoff, and opening sealed items are the
client side's (pushgod/remote/), shared with `pushgod mcp-channel`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pushgod.cli.output import fail
from pushgod.cli.send import default_server
from pushgod.config import Settings
from pushgod.model.ids import parse_channel_id
from pushgod.remote.errors import Stop, say
from pushgod.remote.identity import (
    Identity,
    config_dir,
    identity_path,
    load_identity,
    pair,
    save_identity,
    stored_identity,
    stored_server,
)
from pushgod.remote.items import main_part, reveal, text
from pushgod.remote.stream import CONNECT_TIMEOUT_S, Follower

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


# -- showing items ---------------------------------------------------------------------


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


def server_of(
    option: str | None, token: str | None, directory: Path, channel_id: str, settings: Settings
) -> str:
    """--server, else (without --token) the server of the one identity stored for the
    channel, else public_base_url, else the listen address."""
    server = option or (None if token else stored_server(directory, channel_id))
    return check_server(server or default_server(settings))


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
