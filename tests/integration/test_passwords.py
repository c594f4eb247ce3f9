"""Channel passwords: the failed-login limit, password changes and the verification cache."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from pushgod.config import Settings
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.service.auth import LOCAL_OPERATOR, Credentials
from pushgod.service.services import Services

from .support import Client, basic, call, counts, fail, ok, settings_with

Channel = tuple[str, str]
FAILED_LOGINS = 3


def message(channel: Channel, password: str | None = None) -> dict[str, Any]:
    return {"channel_id": channel[0], "password": password or channel[1], "title": "t"}


class TestFailedLoginLimit:
    """PUSHGOD_SECURITY_FAILED_LOGINS wrong passwords per address and channel, then 429."""

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_SECURITY_FAILED_LOGINS=str(FAILED_LOGINS))

    async def test_guesses_sent_at_once_are_limited_too(
        self, client: Client, channel: Channel
    ) -> None:
        """The limit only counted finished failures, so 16 parallel guesses all got checked."""
        replies = await asyncio.gather(
            *(
                client.post("/message", json=message(channel, f"wrong-password-{n}"))
                for n in range(16)
            )
        )
        statuses = sorted(reply.status for reply in replies)
        assert statuses.count(403) <= FAILED_LOGINS
        assert statuses.count(429) >= 16 - FAILED_LOGINS

    async def test_a_known_good_password_is_never_locked_out(
        self, client: Client, channel: Channel
    ) -> None:
        """Failures from one address (a shared proxy, say) used to block senders who knew it."""
        await ok(client, "POST", "/message", json=message(channel))
        for _ in range(FAILED_LOGINS):
            await fail(
                client,
                "POST",
                "/message",
                403,
                "password_mismatch",
                json=message(channel, "wrong-password"),
            )
        await fail(
            client, "POST", "/message", 429, "rate_limited", json=message(channel, "wrong-again")
        )
        await ok(client, "POST", "/message", json=message(channel))

    async def test_repeated_wrong_passwords_are_rate_limited(
        self, client: Client, services: Services, channel: Channel
    ) -> None:
        other, other_password = await services.channels.create(LOCAL_OPERATOR, "other")
        before = counts(services)
        wrong = message(channel, "wrong-password")
        for _ in range(FAILED_LOGINS - 1):
            await fail(client, "POST", "/message", 403, "password_mismatch", json=wrong)
        # Failures on the read API count for the same channel and address.
        await fail(
            client,
            "GET",
            f"/api/v1/channels/{channel[0]}",
            403,
            "password_mismatch",
            headers=basic(channel[0], "wrong-password"),
        )
        async with client.post("/message", json=wrong) as reply:
            assert reply.status == 429
            assert (await reply.json())["error_code"] == "rate_limited"
            retry_after = reply.headers["Retry-After"]
        window_s = services.settings.security.failed_login_window // 1000
        assert retry_after.isdigit() and 1 <= int(retry_after) <= window_s
        # While limited, even the right password waits: no oracle for guessing.
        await fail(client, "POST", "/message", 429, "rate_limited", json=message(channel))
        await fail(
            client,
            "GET",
            f"/api/v1/channels/{channel[0]}/messages",
            429,
            "rate_limited",
            headers=basic(*channel),
        )
        assert counts(services) == before
        # Another channel from the same address is not affected...
        await ok(client, "POST", "/message", json=message((other.id, other_password)))
        # ...nor the same channel from another address.
        summary = await services.channels.summary(
            Credentials(address="192.0.2.7", password=channel[1]), channel[0]
        )
        assert summary["channel_id"] == channel[0]


async def test_changed_password_stops_the_old_one_on_the_next_request(
    client: Client, services: Services, channel: Channel
) -> None:
    channel_id, old = channel
    read = f"/api/v1/channels/{channel_id}"
    # Verified once, so now remembered as good.
    await ok(client, "POST", "/message", json=message(channel))
    await ok(client, "GET", read, headers=basic(*channel))
    await services.channels.update(LOCAL_OPERATOR, channel_id, password="the-new-password")
    await fail(client, "POST", "/message", 403, "password_mismatch", json=message(channel))
    await fail(client, "GET", read, 403, "password_mismatch", headers=basic(channel_id, old))
    await ok(client, "POST", "/message", json=message(channel, "the-new-password"))
    await ok(client, "GET", read, headers=basic(channel_id, "the-new-password"))
    # And back: the old password works again once it is the password again.
    await services.channels.update(LOCAL_OPERATOR, channel_id, password=old)
    await fail(
        client,
        "POST",
        "/message",
        403,
        "password_mismatch",
        json=message(channel, "the-new-password"),
    )
    await ok(client, "POST", "/message", json=message(channel))


async def test_concurrent_first_verifications_all_succeed(
    client: Client, services: Services, channel: Channel
) -> None:
    replies = await asyncio.gather(
        *(
            call(client, "POST", "/message", json=message(channel) | {"title": f"m{n}"})
            for n in range(20)
        ),
        *(
            call(client, "GET", f"/api/v1/channels/{channel[0]}", headers=basic(*channel))
            for _ in range(5)
        ),
    )
    assert [status for status, _ in replies] == [200] * 25, replies
    assert counts(services)["messages"] == 20


async def test_concurrent_right_and_wrong_passwords(
    client: Client, services: Services, channel: Channel
) -> None:
    requests = [message(channel)] * 6 + [message(channel, "wrong-password")] * (FAILED_LOGINS - 1)
    replies = await asyncio.gather(*(call(client, "POST", "/message", json=r) for r in requests))
    assert sorted(status for status, _ in replies) == [200] * 6 + [403] * (FAILED_LOGINS - 1)
    assert counts(services)["messages"] == 6


class TestPasswordChangeDuringVerification:
    """A password changed (here by a second process, as the CLI does) while a check of the
    old password is still hashing must not let later requests in with the old password."""

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return settings_with(tmp_path, PUSHGOD_SECURITY_PASSWORD_THREADS="1")

    async def test_old_password_does_not_ride_on_a_pending_check(
        self, client: Client, services: Services, settings: Settings, channel: Channel
    ) -> None:
        channel_id, old = channel
        address = "192.0.2.1"
        loop = asyncio.get_running_loop()
        # Hold the daemon's only hashing thread (the real pool; reached through its private
        # name, as nothing public blocks it), so the first check stays pending.
        gate = threading.Event()
        held = loop.run_in_executor(services.passwords._pool, gate.wait)

        def read(password: str) -> Any:
            return services.channels.summary(
                Credentials(address=address, password=password), channel_id
            )

        first = asyncio.ensure_future(read(old))  # starts checking the old password
        cli = Services(settings)
        cli.open()
        try:
            await cli.channels.update(LOCAL_OPERATOR, channel_id, password="changed-by-the-cli")
        finally:
            cli.close()
        second = asyncio.ensure_future(read(old))  # after the change was committed

        async def release() -> None:
            gate.set()
            await held

        # Tasks start in the order they were made: `second` has begun its check by now.
        await asyncio.ensure_future(release())
        results = await asyncio.gather(first, second, return_exceptions=True)
        # The first check began before the change; the second must not pass.
        assert isinstance(results[1], PushgodError), results
        assert results[1].code is ErrorCode.PASSWORD_MISMATCH
        # Nor any later one, over HTTP.
        await fail(
            client,
            "GET",
            f"/api/v1/channels/{channel_id}",
            403,
            "password_mismatch",
            headers=basic(channel_id, old),
        )
        await ok(
            client,
            "GET",
            f"/api/v1/channels/{channel_id}",
            headers=basic(channel_id, "changed-by-the-cli"),
        )
