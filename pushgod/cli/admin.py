"""`pushgod channel ...` and `pushgod token ...`: administration on the database itself.

These open the data directory directly, so they work whether the daemon runs or not;
a running daemon reads credentials from the database on every request and so honours
a change at once.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pushgod.cli.output import emit, table
from pushgod.config import Settings
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.times import parse_duration_ms
from pushgod.model.tokens import parse_scopes
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.services import Services

T = TypeVar("T")


def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    async def run() -> T:
        services = Services(settings)
        services.open()
        try:
            return await work(services)
        finally:
            services.close()

    return asyncio.run(run())


def when(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _optional_duration(text: str | None, what: str) -> int | None:
    if text is None or text == "none":
        return None
    return parse_duration_ms(text, what)


def _optional_count(text: str | None) -> int | None:
    if text is None or text == "none":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise PushgodError(ErrorCode.INVALID_FIELD, "--count must be a positive integer or none")
    return int(text)


def channel_create(args: argparse.Namespace, settings: Settings) -> int:
    retention_count = _optional_count(args.retention_count)
    retention_age_ms = _optional_duration(args.retention_age, "--retention-age")

    async def work(services: Services) -> dict[str, Any]:
        row, password = await services.channels.create(
            LOCAL_OPERATOR,
            args.name,
            args.password,
            retention_count=retention_count,
            retention_age_ms=retention_age_ms,
        )
        return {"channel_id": row.id, "name": row.name, "password": password}

    emit(with_services(settings, work), args.json)
    return 0


def channel_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> list[dict[str, Any]]:
        return [row.public() for row in services.channels.list(LOCAL_OPERATOR)]

    rows = with_services(settings, work)
    if args.json:
        emit({"channels": rows}, True)
    else:
        for row in rows:
            row["created"] = when(row["created_at"])
        table(rows, ["channel_id", "name", "created", "retention_count", "retention_age_ms"])
    return 0


def channel_rename(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> dict[str, Any]:
        row = await services.channels.update(LOCAL_OPERATOR, args.channel_id, name=args.name)
        return {"channel_id": row.id, "name": row.name}

    emit(with_services(settings, work), args.json)
    return 0


def channel_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from pushgod.model.channels import generate_password

    password = generate_password() if args.password is None else args.password

    async def work(services: Services) -> dict[str, Any]:
        row = await services.channels.update(LOCAL_OPERATOR, args.channel_id, password=password)
        return {"channel_id": row.id, "password": password}

    emit(with_services(settings, work), args.json)
    return 0


def channel_retention(args: argparse.Namespace, settings: Settings) -> int:
    changes: dict[str, Any] = {}
    if args.count is not None:
        changes["retention_count"] = _optional_count(args.count)
    if args.age is not None:
        changes["retention_age_ms"] = _optional_duration(args.age, "--age")

    async def work(services: Services) -> dict[str, Any]:
        row = await services.channels.update(LOCAL_OPERATOR, args.channel_id, **changes)
        return {
            "channel_id": row.id,
            "retention_count": row.retention_count,
            "retention_age_ms": row.retention_age_ms,
        }

    emit(with_services(settings, work), args.json)
    return 0


def channel_delete(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> dict[str, Any]:
        await services.channels.delete(LOCAL_OPERATOR, args.channel_id)
        return {"channel_id": args.channel_id, "deleted": True}

    emit(with_services(settings, work), args.json)
    return 0


def token_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.admin == bool(args.channel) or bool(args.channel) != bool(args.scope):
        raise PushgodError(
            ErrorCode.INVALID_SCOPE, "give --channel ID --scope S[,S] or --admin, not both"
        )
    scopes = frozenset() if args.admin else parse_scopes(args.scope)
    expires = _optional_duration(args.expires, "--expires")

    async def work(services: Services) -> dict[str, Any]:
        row, token = await services.tokens.create(
            LOCAL_OPERATOR,
            channel_id=args.channel,
            scopes=scopes,
            expires_in_ms=expires,
            label=args.label,
        )
        return row.public() | {"token": token}

    data = with_services(settings, work)
    emit(data if args.json else {**data, "expires_at": when(data["expires_at"])}, args.json)
    return 0


def token_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> list[dict[str, Any]]:
        return [row.public() for row in services.tokens.list(LOCAL_OPERATOR, args.channel)]

    rows = with_services(settings, work)
    if args.json:
        emit({"tokens": rows}, True)
    else:
        for row in rows:
            row["expires"] = when(row["expires_at"])
            row["last_used"] = when(row["last_used_at"])
        table(rows, ["token_id", "channel_id", "scopes", "label", "expires", "last_used"])
    return 0


def token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Services) -> dict[str, Any]:
        await services.tokens.revoke(LOCAL_OPERATOR, args.token_id)
        return {"token_id": args.token_id, "revoked": True}

    emit(with_services(settings, work), args.json)
    return 0
