"""Helpers shared by the HTTP integration tests: envelope checks, credentials, store counts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from pushgod.config import Settings, load_settings
from pushgod.model.errors import STATUS, ErrorCode
from pushgod.model.tokens import Scope
from pushgod.service.auth import LOCAL_OPERATOR
from pushgod.service.services import Services

HEX32 = re.compile(r"[0-9a-f]{32}")
TABLES = ("channels", "tokens", "changes", "messages", "events", "things", "ops")
Client = TestClient[Any, Any]


def basic(channel_id: str, password: str) -> dict[str, str]:
    return {"Authorization": encode_basic_auth(channel_id, password)}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check_envelope(body: Any, status: int) -> None:
    """The exact envelope: {success: true, data} or {success: false, error, error_code}."""
    assert isinstance(body, dict), body
    if status == 200:
        assert set(body) == {"success", "data"}, body
        assert body["success"] is True
    else:
        assert set(body) == {"success", "error", "error_code"}, body
        assert body["success"] is False
        assert isinstance(body["error"], str) and body["error"], body
        code = ErrorCode(body["error_code"])
        assert STATUS[code] == status, (code, status)


async def call(client: Client, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Any request: checks the request id and the envelope, returns (status, body)."""
    async with client.request(method, path, **kwargs) as reply:
        assert HEX32.fullmatch(reply.headers.get("x-request-id", "")), reply.headers
        assert reply.content_type == "application/json"
        body = await reply.json()
    check_envelope(body, reply.status)
    return reply.status, body


async def ok(client: Client, method: str, path: str, **kwargs: Any) -> Any:
    """A request that must succeed; returns its data."""
    status, body = await call(client, method, path, **kwargs)
    assert status == 200, body
    return body["data"]


async def fail(
    client: Client, method: str, path: str, status: int, code: str, **kwargs: Any
) -> str:
    """A request that must fail with `status` and `code`; returns the error message."""
    got, body = await call(client, method, path, **kwargs)
    assert (got, body.get("error_code")) == (status, code), body
    message: str = body["error"]
    return message


def counts(services: Services) -> dict[str, int]:
    """Rows in every table, read through a fresh read of the store."""
    tables = services.store.tables
    return {name: getattr(tables, name).select().count() for name in TABLES}


async def admin_token(services: Services) -> str:
    _, token = await services.tokens.create(LOCAL_OPERATOR, channel_id=None, scopes=frozenset())
    return token


async def channel_token(
    services: Services,
    channel_id: str,
    *scopes: Scope,
    expires_in_ms: int | None = None,
) -> str:
    _, token = await services.tokens.create(
        LOCAL_OPERATOR,
        channel_id=channel_id,
        scopes=frozenset(scopes),
        expires_in_ms=expires_in_ms,
    )
    return token


async def expired_channel_token(services: Services, channel_id: str, *scopes: Scope) -> str:
    """A token whose expiry has passed (no token can be created already expired)."""
    row, token = await services.tokens.create(
        LOCAL_OPERATOR, channel_id=channel_id, scopes=frozenset(scopes), expires_in_ms=60_000
    )
    table = services.store.tables.tokens
    await services.store.write(
        lambda tx: table.update(expires_at=row.created_at - 1).where(table.id == row.id).execute()
    )
    return token


async def barrier(services: Services) -> None:
    """Wait until every write queued before this one is committed (the writer is FIFO)."""
    await services.store.write(lambda tx: None)


def settings_with(tmp_path: Path, **environ: str) -> Settings:
    """Defaults, the data directory in `tmp_path`, and these PUSHGOD_* (or PUSHGO_*) names."""
    return load_settings(environ={"PUSHGOD_STORAGE_DATA_DIR": str(tmp_path / "data"), **environ})
