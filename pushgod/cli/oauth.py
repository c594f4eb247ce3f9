"""`pushgod oauth ...`: the OAuth clients assistants registered and the grants they hold."""

from __future__ import annotations

import argparse
from typing import Any

from pushgod.cli.admin import when, with_services
from pushgod.cli.output import emit, table
from pushgod.config import Settings
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.services import Services


def clients_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> list[dict[str, Any]]:
        return services.oauth.clients(LOCAL_OPERATOR)

    rows = with_services(settings, work)
    if args.json:
        emit({"clients": rows}, True)
    else:
        for row in rows:
            row["created"] = when(row["created_at"])
            row["redirect_uris"] = " ".join(row["redirect_uris"])
        table(rows, ["client_id", "client_name", "kind", "grants", "created", "redirect_uris"])
    return 0


def clients_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> None:
        await services.oauth.revoke_client(LOCAL_OPERATOR, args.client_id)

    with_services(settings, work)
    emit({"client_id": args.client_id, "revoked": True}, args.json)
    return 0


def grants_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> list[dict[str, Any]]:
        return [grant.public() for grant in services.oauth.grants(LOCAL_OPERATOR)]

    rows = with_services(settings, work)
    if args.json:
        emit({"grants": rows}, True)
    else:
        for row in rows:
            row["channels"] = " ".join(row["channel_ids"])
            row["created"] = when(row["created_at"])
            row["last_used"] = when(row["last_used_at"])
        table(rows, ["grant_id", "client_id", "scope", "channels", "created", "last_used"])
    return 0


def grants_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> None:
        await services.oauth.revoke_grant(LOCAL_OPERATOR, args.grant_id)

    with_services(settings, work)
    emit({"grant_id": args.grant_id, "revoked": True}, args.json)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    oauth = commands.add_parser(
        "oauth", help="list and revoke the OAuth clients and grants of AI assistants"
    )
    groups = oauth.add_subparsers(dest="group", required=True, metavar="GROUP")

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, func: Any, help: str
    ) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help, description=help)
        parser.set_defaults(func=func)
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return parser

    clients = groups.add_parser("clients", help="clients that registered or were configured")
    client_actions = clients.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(
        client_actions, "list", clients_list, "list OAuth clients and how many grants each holds"
    )
    revoke = command(
        client_actions, "revoke", clients_revoke, "forget a client and end all of its grants"
    )
    revoke.add_argument("client_id")

    grants = groups.add_parser("grants", help="what each assistant may use: scopes and channels")
    grant_actions = grants.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(grant_actions, "list", grants_list, "list grants: client, scopes, channels, last use")
    grant_revoke = command(
        grant_actions,
        "revoke",
        grants_revoke,
        "end a grant: its access and refresh tokens stop working at once",
    )
    grant_revoke.add_argument("grant_id")
