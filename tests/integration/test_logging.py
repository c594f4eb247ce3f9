"""Secrets never reach a log, even at debug level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pushgod.cli.main import configure_logging
from pushgod.model.tokens import Scope, token_hash
from pushgod.service.services import Services


@pytest.fixture
def restore_logging() -> Iterator[None]:
    loggers = [logging.getLogger(), logging.getLogger("peewee")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


async def create_secrets(services: Services, name: str) -> str:
    row, _ = await services.channels.create(None, name, "a-secret-password")
    _, token = await services.tokens.create(
        None, channel_id=row.id, scopes=frozenset({Scope.PUBLISH})
    )
    return token


async def test_debug_logging_shows_no_password_or_token_hash(
    services: Services, caplog: pytest.LogCaptureFixture, restore_logging: None
) -> None:
    """peewee logs every statement with its parameters, argon2id hashes included."""
    with caplog.at_level(logging.DEBUG):
        await create_secrets(services, "unguarded")
    assert "$argon2id" in caplog.text, "peewee no longer logs parameters: rethink this test"
    caplog.clear()

    configure_logging("debug")
    with caplog.at_level(logging.DEBUG):
        token = await create_secrets(services, "guarded")
    assert "$argon2id" not in caplog.text
    assert token_hash(token) not in caplog.text and token not in caplog.text
    assert "a-secret-password" not in caplog.text


async def test_a_failed_request_is_logged_once_with_journal_fields(
    client: TestClient[Any, Any], channel: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """`journalctl -u pushgod ERROR_CODE=…` finds failures: the record carries the fields
    (upper-case, as journald keeps them) and never the password that was tried."""
    wrong = "not-the-password-" + channel[1]
    with caplog.at_level(logging.DEBUG, logger="pushgod.http.middlewares"):
        reply = await client.post(
            "/message", json={"channel_id": channel[0], "password": wrong, "title": "t"}
        )
        assert reply.status == 403  # a wrong password
        await client.get("/api/v1/channels/00000000000000000000000000/things")
        await client.get("/nowhere%0AINFO forged line")
    records = [r for r in caplog.records if r.name == "pushgod.http.middlewares"]
    assert [(r.levelname, r.ERROR_CODE) for r in records] == [
        ("INFO", (await reply.json())["error_code"]),
        ("INFO", "channel_not_found"),
        ("DEBUG", "route_not_found"),
    ]
    assert reply.headers["x-request-id"] == records[0].REQUEST_ID
    assert channel[0] == records[0].CHANNEL_ID
    assert records[1].CHANNEL_ID == "0" * 26
    assert not hasattr(records[2], "CHANNEL_ID")
    assert "GET /nowhere%0AINFO%20forged%20line answered 404" in records[2].getMessage()
    assert wrong not in caplog.text and channel[1] not in caplog.text
