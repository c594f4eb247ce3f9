"""Secrets never reach a log, even at debug level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

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
