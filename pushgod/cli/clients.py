"""`pushgod client ...` and `pushgod channel e2ee`: pairing clients and sealing policy."""

from __future__ import annotations

import argparse
import io
import sys
from typing import Any
from urllib.parse import urlencode

from pushgod.cli.admin import when, with_services
from pushgod.cli.output import emit, table
from pushgod.cli.send import default_server
from pushgod.config import Settings
from pushgod.model.sealing import DEFAULT_POLICY
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.services import Services


def pairing_uri(server: str, channel_id: str, code: str) -> str:
    """What the QR code holds (docs/e2ee.md): everything a client needs to pair."""
    return "pushgod://pair?" + urlencode({"server": server, "channel": channel_id, "code": code})


def client_pair(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> tuple[str, int]:
        return await services.clients.pairing_code(LOCAL_OPERATOR, args.channel, args.name)

    code, expires_at = with_services(settings, work)
    server = (args.server or default_server(settings)).rstrip("/")
    uri = pairing_uri(server, args.channel, code)
    data = {"code": code, "channel_id": args.channel, "expires_at": expires_at, "uri": uri}
    if args.json:
        emit(data, True)
        return 0
    import segno  # only here: the daemon never draws QR codes

    drawing = io.StringIO()
    segno.make(uri, error="l").terminal(out=drawing, compact=True)
    print(drawing.getvalue(), end="")
    emit({**data, "expires_at": when(expires_at)}, False)
    print(
        f"\nPair within 10 minutes, e.g.:\n  pushgod listen --server {server} --pair {code} "
        f"{args.channel}",
        file=sys.stderr,
    )
    return 0


def client_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> list[dict[str, Any]]:
        return [row.public() for row in services.clients.list(LOCAL_OPERATOR, args.channel)]

    rows = with_services(settings, work)
    if args.json:
        emit({"clients": rows}, True)
    else:
        for row in rows:
            row["paired"] = when(row["created_at"])
        table(rows, ["client_id", "channel_id", "name", "paired", "public_key"])
    return 0


def client_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> dict[str, Any]:
        await services.clients.revoke(LOCAL_OPERATOR, args.client_id)
        return {"client_id": args.client_id, "revoked": True}

    emit(with_services(settings, work), args.json)
    return 0


def channel_e2ee(args: argparse.Namespace, settings: Settings) -> int:
    policy: str | None = None
    if args.on:
        policy = args.fields or ",".join(DEFAULT_POLICY)

    async def work(services: Services) -> dict[str, Any]:
        row = await services.channels.update(LOCAL_OPERATOR, args.channel_id, e2ee=policy)
        paired = len(services.clients.list(LOCAL_OPERATOR, row.id))
        return {"channel_id": row.id, "e2ee": row.e2ee, "paired_clients": paired}

    data = with_services(settings, work)
    if data["e2ee"] and not data["paired_clients"]:
        print(
            "pushgod: warning: no client is paired with this channel yet; until one is, "
            "sealed fields can be read by nobody (pushgod client pair)",
            file=sys.stderr,
        )
    emit(data, args.json)
    return 0
