"""Rules the service enforces whatever adapter calls it (found in review of the HTTP suite)."""

from __future__ import annotations

import pytest

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.tokens import Scope
from pushgod.service.services import Services


async def test_channel_token_cannot_carry_admin_scope(
    services: Services, channel: tuple[str, str]
) -> None:
    """The HTTP API refused it, but the service accepted an 'admin' scope on a channel token."""
    with pytest.raises(PushgodError) as caught:
        await services.tokens.create(
            None, channel_id=channel[0], scopes=frozenset({Scope.ADMIN, Scope.PUBLISH})
        )
    assert caught.value.code is ErrorCode.INVALID_SCOPE
    assert services.tokens.list(None) == []


async def test_token_lifetime_must_be_positive(
    services: Services, channel: tuple[str, str]
) -> None:
    """expires_in 0s created a token that was dead on arrival."""
    with pytest.raises(PushgodError) as caught:
        await services.tokens.create(
            None, channel_id=channel[0], scopes=frozenset({Scope.PUBLISH}), expires_in_ms=0
        )
    assert caught.value.code is ErrorCode.INVALID_DURATION


async def test_subscribers_know_a_change_when_its_write_returns(
    services: Services, channel: tuple[str, str]
) -> None:
    """Publishing happens before the callers wake: what streams will rely on."""
    from pushgod.model.messages import parse_message
    from pushgod.service.auth import Credentials
    from pushgod.service.context import now_ms

    seen: list[int] = []
    services.hub.subscribe(lambda changes: seen.extend(change.seq for change in changes))
    channel_id, password = channel
    _, intent = parse_message({"channel_id": channel_id, "title": "hi"}, now_ms())
    await services.messages.send(Credentials("127.0.0.1", password=password), intent)
    assert seen, "the write returned before the hub published its change"
