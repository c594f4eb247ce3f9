"""The `pushgod` command line: argument parsing and dispatch to one function per command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable

from pushgod import __version__
from pushgod.cli import admin, backup, clients, devices, doctor, oauth, privileges
from pushgod.cli.listen import add_parser as add_listen_parser
from pushgod.cli.listen import listen
from pushgod.cli.mcp_channel import add_parser as add_mcp_channel_parser
from pushgod.cli.mcp_channel import mcp_channel
from pushgod.cli.output import fail
from pushgod.cli.send import send
from pushgod.config import Settings, effective, example_toml, load_settings
from pushgod.model.errors import PushgodError
from pushgod.model.sealing import DEFAULT_POLICY
from pushgod.systemd import journal_handler, stderr_is_journal

Command = Callable[[argparse.Namespace, Settings], int]


QUIET_LIBRARIES = ("peewee", "playhouse")
"""peewee logs every statement with its parameters at debug level: password hashes and
token hashes among them. Secrets never go to a log, so these stay at info or above."""
SECRETIVE_LIBRARIES = ("mcp", "authlib")
"""The MCP SDK logs session ids (bearer-like: they bind a session) at info, and authlib
logs tokens it issues at debug: these stay at warning or above."""


def configure_logging(level: str) -> None:
    """Plain text on stderr; under systemd, journal records with fields (pushgod.systemd)."""
    journal = journal_handler()
    if journal is not None:
        logging.basicConfig(level=level.upper(), format="%(name)s: %(message)s", handlers=[journal])
    else:  # the journal stamps the time itself
        stamp = "" if stderr_is_journal() else "%(asctime)s "
        logging.basicConfig(
            level=level.upper(),
            format=stamp + "%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    for name in SECRETIVE_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from pushgod.daemon import serve

    configure_logging(settings.log.level)
    return asyncio.run(serve(settings, demo=args.demo))


def cmd_mcp_channel(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log.level)  # to stderr: stdout carries the MCP session
    return mcp_channel(args, settings)


def cmd_config_example(args: argparse.Namespace, settings: Settings) -> int:
    print(example_toml(), end="")
    return 0


def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    print(f"ok: settings from {settings.source} are valid")
    return 0


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps({"source": settings.source, **effective(settings)}, indent=2))
    return 0


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _command(
    parsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Command,
    help: str,
) -> argparse.ArgumentParser:
    parser = parsers.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pushgod",
        description="Self-hosted push and device-status daemon, compatible with PushGo's "
        "sender API.",
    )
    parser.add_argument("--version", action="version", version=f"pushgod {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration file (default: $PUSHGOD_CONFIG, else /etc/pushgod/pushgod.toml "
        "when it exists, else built-in defaults)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(commands, "serve", cmd_serve, "run the daemon")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", help="listen port (overrides server.port)")
    serve.add_argument("--data-dir", help="data directory (overrides storage.data_dir)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="when there is no channel yet, create one called 'demo' and print its id, "
        "password and a curl line that sends a message",
    )

    channel = commands.add_parser("channel", help="create and manage channels")
    channel_commands = channel.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _command(
        channel_commands,
        "create",
        admin.channel_create,
        "create a channel; prints its id and password",
    )
    create.add_argument("name")
    create.add_argument("--password", help="8-128 bytes; generated when not given")
    create.add_argument("--retention-count", metavar="N", help="messages kept (default: config)")
    create.add_argument("--retention-age", metavar="DUR", help="how long messages are kept")
    _json_flag(create)
    listing = _command(channel_commands, "list", admin.channel_list, "list channels")
    _json_flag(listing)
    rename = _command(channel_commands, "rename", admin.channel_rename, "rename a channel")
    rename.add_argument("channel_id")
    rename.add_argument("name")
    _json_flag(rename)
    passwd = _command(
        channel_commands,
        "passwd",
        admin.channel_passwd,
        "set a new password (generated when not given); the old one stops working at once",
    )
    passwd.add_argument("channel_id")
    passwd.add_argument("--password")
    _json_flag(passwd)
    keep = _command(
        channel_commands,
        "retention",
        admin.channel_retention,
        "set how many messages a channel keeps and for how long ('none': config)",
    )
    keep.add_argument("channel_id")
    keep.add_argument("--count", metavar="N|none")
    keep.add_argument("--age", metavar="DUR|none")
    _json_flag(keep)
    delete = _command(
        channel_commands,
        "delete",
        admin.channel_delete,
        "delete a channel with all its messages, events, things and tokens",
    )
    delete.add_argument("channel_id")
    _json_flag(delete)
    e2ee = _command(
        channel_commands,
        "e2ee",
        clients.channel_e2ee,
        "turn end-to-end encryption of a channel's sensitive fields on or off",
    )
    e2ee.add_argument("channel_id")
    switch = e2ee.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", action="store_true", help="seal the fields for paired clients")
    switch.add_argument("--off", action="store_true", help="store new items in plain text")
    e2ee.add_argument(
        "--fields",
        metavar="F,...",
        help="what to seal, e.g. message.title,message.body,event.attrs,thing.attrs.KEY "
        f"(default: {','.join(DEFAULT_POLICY)})",
    )
    _json_flag(e2ee)

    client = commands.add_parser(
        "client", help="pair, list and revoke clients that receive sealed items"
    )
    client_commands = client.add_subparsers(dest="action", required=True, metavar="ACTION")
    cpair = _command(
        client_commands,
        "pair",
        clients.client_pair,
        "print a one-time pairing code (valid 10 minutes) and its QR code",
    )
    cpair.add_argument("--channel", metavar="ID", required=True)
    cpair.add_argument("--name", help="a name for the client (default: the one it sends)")
    cpair.add_argument(
        "--server",
        metavar="URL",
        help="the URL clients reach this server at, put in the QR code "
        "(default: public_base_url, else the listen address)",
    )
    _json_flag(cpair)
    clist = _command(client_commands, "list", clients.client_list, "list paired clients")
    clist.add_argument("--channel", metavar="ID")
    _json_flag(clist)
    crevoke = _command(
        client_commands,
        "revoke",
        clients.client_revoke,
        "revoke a client: its streams end at once and nothing more is sealed for it",
    )
    crevoke.add_argument("client_id")
    _json_flag(crevoke)

    devices.add_parser(commands)
    oauth.add_parser(commands)
    backup.add_parser(commands)
    doctor.add_parser(commands)

    token = commands.add_parser("token", help="create, list and revoke bearer tokens")
    token_commands = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    tcreate = _command(
        token_commands, "create", admin.token_create, "create a token; it is shown only this once"
    )
    tcreate.add_argument("--channel", metavar="ID", help="the channel the token acts on")
    tcreate.add_argument("--scope", metavar="S[,S]", help="publish, subscribe, things")
    tcreate.add_argument("--admin", action="store_true", help="a global admin token")
    tcreate.add_argument("--expires", metavar="DUR", help="lifetime such as 30d (default: never)")
    tcreate.add_argument("--label", help="a note shown in the list")
    _json_flag(tcreate)
    tlist = _command(token_commands, "list", admin.token_list, "list tokens (not their secrets)")
    tlist.add_argument("--channel", metavar="ID")
    _json_flag(tlist)
    trevoke = _command(token_commands, "revoke", admin.token_revoke, "revoke a token at once")
    trevoke.add_argument("token_id")
    _json_flag(trevoke)

    sender = _command(commands, "send", send, "send a message to a pushgod or PushGo server")
    sender.add_argument(
        "--server",
        metavar="URL",
        help="server URL (default: public_base_url, else the listen address)",
    )
    sender.add_argument("--channel", metavar="ID", required=True)
    credential = sender.add_mutually_exclusive_group(required=True)
    credential.add_argument("--password", metavar="P")
    credential.add_argument("--token", metavar="T", help="a token with the publish scope")
    sender.add_argument("title")
    sender.add_argument("body", nargs="?")
    sender.add_argument("--severity", choices=["critical", "high", "normal", "low"])
    sender.add_argument("--url", metavar="U")
    _json_flag(sender)

    listener = _command(
        commands,
        "listen",
        listen,
        "receive a channel's items as they arrive, opening sealed fields (pair with --pair)",
    )
    add_listen_parser(listener)

    bridge = _command(
        commands,
        "mcp-channel",
        cmd_mcp_channel,
        "an MCP server on stdio that pushes a channel's items into a Claude Code session",
    )
    add_mcp_channel_parser(bridge)

    config = commands.add_parser("config", help="print or check the configuration")
    config_commands = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(
        config_commands,
        "example",
        cmd_config_example,
        "print a commented configuration file with every key",
    )
    _command(config_commands, "check", cmd_config_check, "validate the effective settings")
    _command(
        config_commands, "show", cmd_config_show, "print the effective settings (secrets hidden)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {}
    for section, key, attr in (
        ("server", "host", "host"),
        ("server", "port", "port"),
        ("storage", "data_dir", "data_dir"),
    ):
        if getattr(args, attr, None) is not None:
            overrides[(section, key)] = getattr(args, attr)
    try:
        settings = load_settings(args.config, overrides=overrides)
    except PushgodError as error:
        if hasattr(args, "on_config_error"):  # `doctor` reports it among its checks
            return int(args.on_config_error(args, error))
        print(f"pushgod: invalid configuration: {error.message}", file=sys.stderr)
        return 2
    try:
        privileges.for_command(args.command, settings.data_dir)  # as root: see privileges.py
        result: int = args.func(args, settings)
    except PushgodError as error:
        return fail(error.message, error.code.value)
    except OSError as error:  # e.g. a data directory that cannot be created or opened
        return fail(str(error))
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
