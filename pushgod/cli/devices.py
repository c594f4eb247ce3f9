"""`pushgod device ...`: MQTT accounts for devices, each confined to its own Thing."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from pushgod.cli.admin import when, with_services
from pushgod.cli.output import emit, table
from pushgod.config import Settings
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.services import Services


def publish_example(settings: Settings, thing_id: str, password: str) -> str:
    """A mosquitto_pub line that sets one attribute of the device's Thing."""
    mqtt = settings.mqtt
    words = ["mosquitto_pub", "-h", mqtt.device_host or mqtt.host, "-p", str(mqtt.port)]
    if mqtt.tls:
        words += ["--cafile", mqtt.ca_file] if mqtt.ca_file else ["--capath", "/etc/ssl/certs"]
    words += ["-u", thing_id, "-P", password, "-q", "1"]
    words += ["-t", f"{mqtt.root}/things/{thing_id}/in/attr/uptime_s", "-m", "42"]
    return shlex.join(words)


def _provisioned(settings: Settings, action: Any) -> Any:
    """Run `action(services, accounts)` with the broker's provisioning backend open."""

    # Only here: aiomqtt and paho load for the device commands, not for every command.
    from pushgod.mqtt.accounts import FileAccounts, open_accounts

    async def work(services: Services) -> Any:
        async with open_accounts(settings.mqtt, settings.data_dir) as accounts:
            result = await action(services, accounts)
            if isinstance(accounts, FileAccounts):
                print(f"pushgod: {accounts.reload_hint()}", file=sys.stderr)
            return result

    return with_services(settings, work)


def device_add(args: argparse.Namespace, settings: Settings) -> int:
    async def action(services: Services, accounts: Any) -> dict[str, Any]:
        row, password = await services.devices.add(
            LOCAL_OPERATOR, accounts, args.thing_id, args.channel, create=args.create
        )
        return {
            "thing_id": row.thing_id,
            "channel_id": row.channel_id,
            "provisioning": row.provisioning,
            "mqtt_username": row.thing_id,
            "mqtt_password": password,
            "example": publish_example(settings, row.thing_id, password),
        }

    data = _provisioned(settings, action)
    emit(data, args.json)
    if not args.json:
        print(
            "\nThe password is shown only this once. Try it:\n  " + data["example"],
            file=sys.stderr,
        )
    return 0


def device_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> list[dict[str, Any]]:
        return services.devices.list(LOCAL_OPERATOR, args.channel)

    rows = with_services(settings, work)
    if args.json:
        emit({"devices": rows}, True)
    else:
        for row in rows:
            row["last_seen"] = when(row["last_seen_at"])
        columns = ["thing_id", "channel_id", "availability", "last_seen", "updates"]
        table(rows, [*columns, "provisioning"])
    return 0


def device_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def action(services: Services, accounts: Any) -> dict[str, Any]:
        await services.devices.revoke(LOCAL_OPERATOR, accounts, args.thing_id)
        return {"thing_id": args.thing_id, "revoked": True}

    emit(_provisioned(settings, action), args.json)
    return 0


def device_rotate(args: argparse.Namespace, settings: Settings) -> int:
    async def action(services: Services, accounts: Any) -> dict[str, Any]:
        password = await services.devices.rotate(LOCAL_OPERATOR, accounts, args.thing_id)
        return {
            "thing_id": args.thing_id,
            "mqtt_username": args.thing_id,
            "mqtt_password": password,
        }

    emit(_provisioned(settings, action), args.json)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    device = commands.add_parser(
        "device", help="give devices MQTT accounts that may update only their own Thing"
    )
    actions = device.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, description=help)
        parser.set_defaults(func=func)
        return parser

    add = command(
        "add",
        device_add,
        "register a device for a Thing and create its broker account; prints the MQTT "
        "username, password and a mosquitto_pub example",
    )
    add.add_argument("thing_id", help="the Thing's id, also the MQTT username ([a-z0-9_-])")
    add.add_argument("--channel", metavar="ID", required=True)
    add.add_argument("--create", action="store_true", help="create the Thing when it is missing")
    listing = command("list", device_list, "list devices: availability, last seen, updates")
    listing.add_argument("--channel", metavar="ID")
    revoke = command("revoke", device_revoke, "remove a device's broker account (its Thing stays)")
    revoke.add_argument("thing_id")
    rotate = command(
        "rotate", device_rotate, "give a device a new password; sessions on the old one end"
    )
    rotate.add_argument("thing_id")
    for parser in (add, listing, revoke, rotate):
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
