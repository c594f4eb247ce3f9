"""`pushgod mcp-channel`: the options of the Claude Code channel bridge, and its start.

The bridge itself is pushgod/mcp/channel_bridge.py; the MCP SDK and aiohttp load only when
the command runs. stdout is the MCP wire: everything this command says goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pushgod.cli.listen import run_until_stopped, server_of
from pushgod.cli.output import fail
from pushgod.config import Settings
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import Severity
from pushgod.model.ids import check_entity_id, parse_channel_id
from pushgod.remote.errors import Stop, say
from pushgod.remote.identity import Identity, config_dir, stored_identity

TYPES = ("message", "event", "thing", "*")
SEVERITIES = (*(severity.value for severity in Severity), "*")

DESCRIPTION = """An MCP server on stdin/stdout for Claude Code: it follows pushgod channels and
pushes the items they carry into the Claude Code session as channel events
(notifications/claude/channel, with the capability claude/channel), and gives Claude a `reply`
tool that sends a Message back and a `status` tool. Claude Code starts it from .mcp.json; see
docs/mcp-channel.md. Nothing reaches the session until it is allowed: an item is forwarded only
when its channel is an --allow-channel, its type an --allow-type, its severity (messages and
events have one) an --allow-severity and, when it is about a thing (a thing change, or a message
or event with a thing_id), that thing an --allow-thing. Every list starts empty, and an empty list
lets nothing through; '*' allows every type, severity or thing. Each allowed channel is followed
with the identity stored when this machine was paired with it (`pushgod listen --pair CODE
CHANNEL` once), which also opens its sealed fields, or with --token T (the subscribe scope; an
admin token for several channels). `reply` needs the publish scope, which a paired client's token
lacks: give --reply-token T (`pushgod token create --channel ID --scope publish`). Streams
resume after the last item and reconnect with backoff (0.5 s doubling up to 30 s) like `pushgod
listen`; a refused token ends the command with status 1. It exits 0 when the client closes
stdin, and on SIGTERM."""


def channel_arg(text: str) -> str:
    try:
        return parse_channel_id(text)
    except PushgodError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def thing_arg(text: str) -> str:
    if text == "*":
        return text
    try:
        return check_entity_id(text, "a thing id", ErrorCode.INVALID_THING_ID)
    except PushgodError as error:
        raise argparse.ArgumentTypeError(error.message) from None


ALLOW: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (
        "--allow-channel",
        "ID",
        {"type": channel_arg},
        "follow this channel and let its items through",
    ),
    (
        "--allow-type",
        "TYPE",
        {"choices": TYPES},
        "let items of this type through: message, event, thing or *",
    ),
    (
        "--allow-severity",
        "LEVEL",
        {"choices": SEVERITIES},
        "let messages and events of this severity through: critical, high, normal, low or *",
    ),
    (
        "--allow-thing",
        "ID",
        {"type": thing_arg},
        "let items about this thing through, or * for every thing",
    ),
)
"""The allowlist options: flag, metavar, how values are checked, help."""


def mcp_channel(args: argparse.Namespace, settings: Settings) -> int:
    from pushgod.mcp.channel import Allowlist
    from pushgod.mcp.channel_bridge import Bridge, Source

    allowlist = Allowlist(
        channels=frozenset(args.allow_channel),
        types=frozenset(args.allow_type),
        severities=frozenset(args.allow_severity),
        things=frozenset(args.allow_thing),
    )
    directory = config_dir(args.config_dir)
    # An .mcp.json passes "${VAR:-}" as "" when VAR is unset: that means no token.
    token, reply_token = args.token or None, args.reply_token or None
    try:
        sources = []
        for channel_id in sorted(allowlist.channels):
            server = server_of(args.server, token, directory, channel_id, settings)
            if token is not None:
                identity = Identity(token)
            else:
                how = (
                    f"pair it once with pushgod listen --server {server} --pair CODE "
                    f"{channel_id} (pushgod client pair on the server prints a code), or "
                    "pass --token T"
                )
                identity = stored_identity(directory, server, channel_id, how)
            sources.append(Source(channel_id, server, identity))
    except Stop as stop:
        return fail(stop.message, stop.code)
    for gap in allowlist.gaps():
        say(f"warning: {gap}")
    try:
        return asyncio.run(run_until_stopped(Bridge(allowlist, sources, reply_token).serve()))
    except Stop as stop:
        return fail(stop.message, stop.code)


def add_parser(parser: argparse.ArgumentParser) -> None:
    """The options of `pushgod mcp-channel`."""
    parser.description = DESCRIPTION
    for flag, metavar, check, what in ALLOW:
        parser.add_argument(
            flag, metavar=metavar, action="append", default=[], help=f"{what} (repeatable)", **check
        )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="the server's URL (default: the server of the one identity stored for the "
        "channel, else public_base_url, else the listen address)",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        help="follow the channels with this token (subscribe scope) instead of the stored "
        "identities; sealed fields stay sealed",
    )
    parser.add_argument(
        "--reply-token",
        metavar="T",
        help="send replies with this token (publish scope; default: the stream's token, "
        "which for a paired client cannot publish)",
    )
    parser.add_argument(
        "--config-dir",
        metavar="DIR",
        help="where identities are stored (default: $XDG_CONFIG_HOME/pushgod, else "
        "~/.config/pushgod)",
    )
