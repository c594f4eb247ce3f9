"""An AI assistant tried as a new user would: the MCP SDK's own client against the real daemon.

The assistant connects to /mcp with `OAuthClientProvider` (discovery, registration, PKCE), the
person authorizes a channel in Chromium, and everything the assistant then does goes through
MCP tools: a message, an Event opened, updated and closed, a Thing created and updated. A
`pushgod listen --json` process with a subscribe token follows the channel meanwhile and must
print each item; the HTTP read API must show each. Then the assistant binds a second channel
(bind.start, the person completes the page in Chromium, bind.status), sends to it and reads
its resources; and the 2026-07-28 `mcp.Client` sends with the token the first client stored.

Every wait awaits something (a line, a page, a reply) under a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
from daemon.harness import Daemon, basic_auth
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ResourceListChangedNotification, TextResourceContents
from playwright.async_api import Page, expect

from .conftest import GUARD_S, Callback
from .test_mcp_oauth_client import FLOW_GUARD_S, MemoryStorage, Person, provider

HANDSHAKE_REVISION = "2025-11-25"
MODERN_REVISION = "2026-07-28"


# -- `pushgod listen` ------------------------------------------------------------------------


class Listener:
    """A `pushgod listen --json` process: its items are awaited line by line, never slept for."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.errors: list[str] = []

    @classmethod
    @asynccontextmanager
    async def running(cls, daemon: Daemon, *args: str) -> AsyncIterator[Listener]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pushgod",
            "listen",
            "--server",
            daemon.url,
            *args,
            env=daemon.environ(),
            cwd=daemon.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        listener = cls(process)
        try:
            yield listener
        finally:
            if process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), GUARD_S)

    async def item(self) -> dict[str, Any]:
        """The next item it printed (one JSON object per line)."""
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), GUARD_S)
        assert raw, f"the listener closed its stdout; stderr:\n{await self.rest_of_stderr()}"
        item: dict[str, Any] = json.loads(raw)
        return item

    async def stderr_until(self, text: str) -> str:
        """Read stderr up to the first line containing `text`; that line."""
        assert self.process.stderr is not None
        while True:
            raw = await asyncio.wait_for(self.process.stderr.readline(), GUARD_S)
            assert raw, f"stderr ended before {text!r}: {self.errors}"
            line = raw.decode().rstrip("\n")
            self.errors.append(line)
            if text in line:
                return line

    async def rest_of_stderr(self) -> str:
        assert self.process.stderr is not None
        if self.process.returncode is None:
            self.process.terminate()
        rest = await asyncio.wait_for(self.process.stderr.read(), GUARD_S)
        self.errors += rest.decode().splitlines()
        return "\n".join(self.errors)


# -- the assistant's side --------------------------------------------------------------------


@asynccontextmanager
async def assistant_session(
    daemon: Daemon,
    storage: MemoryStorage,
    callback: Callback,
    person: Person,
    notes: list[Any],
) -> AsyncIterator[ClientSession]:
    """The SDK client on /mcp, authorized by `person` in the browser on its first 401."""

    async def on_message(message: Any) -> None:
        notes.append(message)

    auth = provider(daemon, storage, callback, person)
    async with (
        httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(GUARD_S)) as http,
        streamable_http_client(f"{daemon.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        yield session


def structured(result: CallToolResult) -> dict[str, Any]:
    """A tool's structured result, which its text content must repeat; it must not be an error."""
    assert result.structured_content is not None, result
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    assert not result.is_error, result.structured_content
    data: dict[str, Any] = result.structured_content
    return data


async def call(session: ClientSession, name: str, **arguments: Any) -> dict[str, Any]:
    async with asyncio.timeout(GUARD_S):
        return structured(await session.call_tool(name, arguments))


async def refused(session: ClientSession, name: str, **arguments: Any) -> str:
    """The error_code of a call that must fail as a tool error."""
    async with asyncio.timeout(GUARD_S):
        result = await session.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    assert result.structured_content is not None
    code: str = result.structured_content["error_code"]
    return code


def sent(result: dict[str, Any], channel_id: str, name: str) -> dict[str, Any]:
    """Check a send tool's PushGo result in OAuth mode; its payload's data."""
    assert result["status"] == 200
    assert result["auth_mode"] == "oauth2"
    assert (result["channel_id"], result["channel_name"]) == (channel_id, name)
    assert result["channel_display"] == f"{name} ({channel_id})"
    assert result["payload"]["success"] is True
    data: dict[str, Any] = result["payload"]["data"]
    return data


async def read_api(daemon: Daemon, channel: tuple[str, str], path: str) -> dict[str, Any]:
    """GET /api/v1/channels/{id}/PATH with HTTP Basic (channel id and password); its data."""
    channel_id, password = channel
    async with (
        asyncio.timeout(GUARD_S),
        aiohttp.ClientSession() as http,
        http.get(
            f"{daemon.url}/api/v1/channels/{channel_id}/{path}",
            headers=basic_auth(channel_id, password),
        ) as reply,
    ):
        envelope = await reply.json()
    assert reply.status == 200, envelope
    assert envelope["success"] is True, envelope
    data: dict[str, Any] = envelope["data"]
    return data


# -- the tests -------------------------------------------------------------------------------


async def test_a_new_user_connects_an_assistant_that_sends_everything(
    mcp_daemon: Daemon, browser_page: Page, callback: Callback, tmp_path: Path
) -> None:
    daemon = mcp_daemon
    channel = await asyncio.to_thread(daemon.create_channel, "office")
    channel_id = channel[0]
    subscribe = await asyncio.to_thread(
        daemon.cli_json, "token", "create", "--channel", channel_id, "--scope", "subscribe"
    )
    person = Person(browser_page, *channel)
    storage = MemoryStorage()
    notes: list[Any] = []
    config = ("--config-dir", str(tmp_path / "listener"))

    async with Listener.running(
        daemon, "--token", subscribe["token"], "--json", *config, channel_id
    ) as listener:
        await listener.stderr_until("listening")
        async with (
            asyncio.timeout(FLOW_GUARD_S),
            assistant_session(daemon, storage, callback, person, notes) as session,
        ):
            init = await session.initialize()
            assert init.protocol_version == HANDSHAKE_REVISION
            assert init.server_info.name == "pushgod"
            assert len(person.opened) == 1, "the person authorized once, in the browser"

            message = sent(
                await call(
                    session,
                    "pushgo.message.send",
                    channel_id=channel_id,
                    title="Backup finished",
                    body="**42 GB** in 7 min",
                    severity="high",
                ),
                channel_id,
                "office",
            )
            shown = await listener.item()
            assert (shown["type"], shown["action"]) == ("message", "created")
            assert shown["channel_id"] == channel_id
            assert shown["message"]["message_id"] == message["message_id"]
            assert shown["message"]["title"] == "Backup finished"
            assert shown["message"]["body"] == "**42 GB** in 7 min"
            assert shown["message"]["severity"] == "high"
            seqs = [shown["seq"]]

            opened = sent(
                await call(
                    session,
                    "pushgo.event.create",
                    channel_id=channel_id,
                    title="Deploy v2",
                    status="running",
                    message="pulling images",
                    severity="normal",
                ),
                channel_id,
                "office",
            )
            event_id = opened["event_id"]
            steps = [
                ("pushgo.event.update", "migrating", "schema 41 → 42"),
                ("pushgo.event.close", "done", "all green"),
            ]
            for tool, status, text in steps:
                changed = await call(
                    session,
                    tool,
                    channel_id=channel_id,
                    event_id=event_id,
                    status=status,
                    message=text,
                    severity="normal",
                )
                assert sent(changed, channel_id, "office")["event_id"] == event_id
            for action, status, text, state in (
                ("created", "running", "pulling images", "ONGOING"),
                ("updated", "migrating", "schema 41 → 42", "ONGOING"),
                ("closed", "done", "all green", "CLOSED"),
            ):
                shown = await listener.item()
                assert (shown["type"], shown["action"]) == ("event", action), shown
                assert shown["event"]["event_id"] == event_id
                assert shown["event"]["title"] == "Deploy v2"
                assert (shown["event"]["status"], shown["event"]["message"]) == (status, text)
                assert shown["event"]["state"] == state
                seqs.append(shown["seq"])

            made = sent(
                await call(
                    session,
                    "pushgo.thing.create",
                    channel_id=channel_id,
                    title="NAS",
                    attrs={"disk_used": 40, "raid": "ok"},
                ),
                channel_id,
                "office",
            )
            thing_id = made["thing_id"]
            shown = await listener.item()
            assert (shown["type"], shown["action"]) == ("thing", "created"), shown
            assert shown["thing"]["thing_id"] == thing_id
            assert shown["thing"]["title"] == "NAS"
            assert shown["thing"]["attrs"] == {"disk_used": 40, "raid": "ok"}
            seqs.append(shown["seq"])

            updated = await call(
                session,
                "pushgo.thing.update",
                channel_id=channel_id,
                thing_id=thing_id,
                attrs={"disk_used": 41},
            )
            assert sent(updated, channel_id, "office")["thing_id"] == thing_id
            shown = await listener.item()
            assert (shown["type"], shown["action"]) == ("thing", "updated"), shown
            assert shown["thing"]["thing_id"] == thing_id
            assert shown["thing"]["attrs"] == {"disk_used": 41, "raid": "ok"}  # merged
            seqs.append(shown["seq"])
            assert seqs == sorted(set(seqs)), "each item once, in order"

        # The 2026-07-28 client, in auto mode, with the token the first client stored.
        assert storage.tokens is not None
        headers = {"Authorization": f"Bearer {storage.tokens.access_token}"}
        async with (
            asyncio.timeout(FLOW_GUARD_S),
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(GUARD_S)) as http,
            Client(streamable_http_client(f"{daemon.url}/mcp", http_client=http)) as modern,
        ):
            assert modern.session.protocol_version == MODERN_REVISION
            result = await modern.call_tool(
                "pushgo.message.send", {"channel_id": channel_id, "title": "From the new client"}
            )
            modern_message = sent(structured(result), channel_id, "office")
        shown = await listener.item()
        assert (shown["type"], shown["action"]) == ("message", "created")
        assert shown["message"]["message_id"] == modern_message["message_id"]
        assert shown["message"]["title"] == "From the new client"
        assert shown["seq"] > seqs[-1]
        assert "Traceback" not in await listener.rest_of_stderr()
    assert len(person.opened) == 1, "the stored token needed no second consent"

    # Each is in the store, as the HTTP read API shows it to the channel's owner.
    messages = (await read_api(daemon, channel, "messages"))["messages"]
    assert [(item["message_id"], item["title"]) for item in messages] == [
        (modern_message["message_id"], "From the new client"),
        (message["message_id"], "Backup finished"),
    ]
    assert messages[1]["body"] == "**42 GB** in 7 min"
    event = await read_api(daemon, channel, f"events/{event_id}")
    assert event["event"]["state"] == "CLOSED"
    assert (event["event"]["status"], event["event"]["message"]) == ("done", "all green")
    assert [update["status"] for update in event["updates"]] == ["running", "migrating", "done"]
    assert [update["seq"] for update in event["updates"]] == seqs[1:4]
    thing = (await read_api(daemon, channel, f"things/{thing_id}"))["thing"]
    assert (thing["title"], thing["attrs"]) == ("NAS", {"disk_used": 41, "raid": "ok"})


async def test_the_assistant_binds_a_second_channel_and_reads_its_resources(
    mcp_daemon: Daemon, browser_page: Page, callback: Callback
) -> None:
    daemon = mcp_daemon
    office = await asyncio.to_thread(daemon.create_channel, "office")
    garage = await asyncio.to_thread(daemon.create_channel, "garage")
    page = browser_page
    person = Person(page, *office)
    storage = MemoryStorage()
    notes: list[Any] = []

    async with (
        asyncio.timeout(FLOW_GUARD_S),
        assistant_session(daemon, storage, callback, person, notes) as session,
    ):
        await session.initialize()
        listed = await call(session, "pushgo.channel.list")
        assert [item["channel_id"] for item in listed["channels"]] == [office[0]]
        early = await refused(session, "pushgo.message.send", channel_id=garage[0], title="x")
        assert early == "channel_not_bound"

        started = await call(session, "pushgo.channel.bind.start", requested_channel_id=garage[0])
        session_id = started["bind_session_id"]
        assert started["action"] == "bind"
        assert started["bind_url"] == (
            f"{daemon.url}/mcp/bind/session?bind_session_id={session_id}"
        )
        assert started["poll_after_ms"] > 0
        pending = await call(session, "pushgo.channel.bind.status", bind_session_id=session_id)
        assert (pending["status"], pending["resources_changed"]) == ("pending", False)

        # The person opens the link the assistant showed and proves the second channel.
        response = await page.goto(started["bind_url"])
        assert response is not None and response.status == 200
        await expect(page.locator("#channel-id")).to_have_value(garage[0])  # as requested
        await page.locator("#password").fill(garage[1])
        await page.locator("#submit").click()
        await expect(page.locator("#done")).to_contain_text(garage[0])

        # The page said done, so the first poll already sees it.
        notes.clear()
        done = await call(session, "pushgo.channel.bind.status", bind_session_id=session_id)
        assert (done["status"], done["action"], done["resources_changed"]) == (
            "completed",
            "bind",
            True,
        )
        assert (done["channel_id"], done["channel_display"]) == (
            garage[0],
            f"garage ({garage[0]})",
        )
        assert any(isinstance(note, ResourceListChangedNotification) for note in notes), notes
        again = await call(session, "pushgo.channel.bind.status", bind_session_id=session_id)
        assert (again["status"], again["resources_changed"]) == ("completed", False)

        listed = await call(session, "pushgo.channel.list")
        assert {item["channel_id"]: item["channel_display"] for item in listed["channels"]} == {
            office[0]: f"office ({office[0]})",
            garage[0]: f"garage ({garage[0]})",
        }
        to_garage = sent(
            await call(
                session, "pushgo.message.send", channel_id=garage[0], title="Door left open"
            ),
            garage[0],
            "garage",
        )

        # The resources, through the same session.
        async with asyncio.timeout(GUARD_S):
            resources = (await session.list_resources()).resources
        assert sorted(str(item.uri) for item in resources) == sorted(
            [
                "pushgo://channels",
                f"pushgo://channels/{office[0]}",
                f"pushgo://channels/{garage[0]}",
            ]
        )

        async def read(uri: str) -> dict[str, Any]:
            async with asyncio.timeout(GUARD_S):
                contents = (await session.read_resource(uri)).contents
            [content] = contents
            assert isinstance(content, TextResourceContents)
            assert (str(content.uri), content.mime_type) == (uri, "application/json")
            data: dict[str, Any] = json.loads(content.text)
            return data

        channels = await read("pushgo://channels")
        assert {item["channel_id"] for item in channels["channels"]} == {office[0], garage[0]}
        channel = await read(f"pushgo://channels/{garage[0]}")
        assert (channel["channel_id"], channel["channel_name"]) == (garage[0], "garage")
        assert channel["status"] == "active"
        assert channel["counts"]["messages"] == 1
        assert [item["message_id"] for item in channel["recent"]["messages"]] == [
            to_garage["message_id"]
        ]
        first = await read(f"pushgo://channels/{office[0]}")
        assert first["counts"]["messages"] == 0 and first["recent"]["messages"] == []

    assert len(person.opened) == 1, "binding needed no second authorization"
    [grant] = (await asyncio.to_thread(daemon.cli_json, "oauth", "grants", "list"))["grants"]
    assert sorted(grant["channel_ids"]) == sorted([office[0], garage[0]])
    messages = (await read_api(daemon, garage, "messages"))["messages"]
    assert [(item["message_id"], item["title"]) for item in messages] == [
        (to_garage["message_id"], "Door left open")
    ]
