"""`pushgod mcp-channel` against the real daemon, driven by the MCP SDK's own stdio client:
the claude/channel capability, notifications for what the allowlist admits (and none for
the rest), the `reply` and `status` tools, pairing, restarts, refused tokens, bad input.

Every wait reads what the bridge sent (a notification, a tool result, a line on its stderr)
or its exit, with a timeout only as a guard against a hang. That an item was filtered out
is shown by order: it is sent first, an allowed item after it, and the allowed item must be
the first notification to arrive, because a channel's items are delivered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult, InitializeResult, TextContent
from pydantic import BaseModel

from pushgod.cli.main import main
from pushgod.model.ids import new_channel_id

from .harness import Daemon, clean_environ, read_messages

GUARD_S = 30.0
"""How long a wait may take before the test fails: a guard against hangs, never a pause."""
WITHIN_S = 1.0
"""Issue 6: a Message sent over HTTP reaches the session within a second."""
METHOD = "notifications/claude/channel"


class ChannelEvent(BaseModel):
    content: str
    meta: dict[str, str]


@dataclass
class Bridge:
    """A bridge process, the SDK client session on its stdio, and what it sent so far."""

    client: ClientSession
    init: InitializeResult
    stderr: asyncio.StreamReader
    events: asyncio.Queue[tuple[float, ChannelEvent]] = field(default_factory=asyncio.Queue)
    errors: list[str] = field(default_factory=list)

    async def event(self) -> tuple[float, ChannelEvent]:
        """The next notification and when it arrived (time.monotonic())."""
        return await asyncio.wait_for(self.events.get(), GUARD_S)

    async def stderr_until(self, text: str) -> str:
        """Read stderr up to the first line containing `text`; that line."""
        while True:
            raw = await asyncio.wait_for(self.stderr.readline(), GUARD_S)
            assert raw, f"stderr ended before {text!r}: {self.errors}"
            line = raw.decode().rstrip("\n")
            self.errors.append(line)
            if text in line:
                return line

    async def tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        return await asyncio.wait_for(self.client.call_tool(name, arguments or {}), GUARD_S)

    async def status(self) -> dict[str, Any]:
        result = await self.tool("status")
        assert not result.is_error, result.content
        assert isinstance(result.structured_content, dict)
        return result.structured_content


@contextlib.asynccontextmanager
async def bridge(daemon: Daemon, config: Path, *args: str) -> AsyncIterator[Bridge]:
    """`pushgod mcp-channel --server URL --config-dir CONFIG ARGS`, initialized."""
    read_fd, write_fd = os.pipe()
    parameters = StdioServerParameters(
        command=sys.executable,
        args=[
            *("-m", "pushgod", "mcp-channel", "--server", daemon.url),
            *("--config-dir", str(config), *args),
        ],
        env=daemon.environ(),
        cwd=daemon.workdir,
    )
    loop = asyncio.get_running_loop()
    stderr = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stderr), os.fdopen(read_fd, "rb")
    )
    events: asyncio.Queue[tuple[float, ChannelEvent]] = asyncio.Queue()

    async def arrived(event: ChannelEvent) -> None:
        events.put_nowait((time.monotonic(), event))

    binding = NotificationBinding(method=METHOD, params_type=ChannelEvent, handler=arrived)
    try:
        with os.fdopen(write_fd, "w") as errlog:
            async with stdio_client(parameters, errlog=errlog) as (read, write):
                errlog.close()  # the bridge holds its own copy: stderr ends when it exits
                async with ClientSession(read, write, notification_bindings=[binding]) as client:
                    init = await asyncio.wait_for(client.initialize(), GUARD_S)
                    yield Bridge(client, init, stderr, events)
    finally:
        transport.close()


async def send(
    http: aiohttp.ClientSession, daemon: Daemon, body: dict[str, Any], route: str = "message"
) -> dict[str, Any]:
    """Send over HTTP as any sender would; the reply's data."""
    async with http.post(f"{daemon.url}/{route}", json=body) as reply:
        envelope = await reply.json()
    assert envelope["success"], envelope
    data: dict[str, Any] = envelope["data"]
    return data


def token(daemon: Daemon, channel_id: str, scopes: str) -> str:
    created = daemon.cli_json("token", "create", "--channel", channel_id, "--scope", scopes)
    return str(created["token"])


def error_of(result: CallToolResult) -> tuple[str, str | None]:
    """A tool error's text and error_code."""
    assert result.is_error, result
    [content] = result.content
    assert isinstance(content, TextContent)
    code = result.structured_content["error_code"] if result.structured_content else None
    return content.text, code


async def test_an_allowed_message_arrives_within_a_second_and_the_rest_do_not(
    daemon: Daemon, tmp_path: Path
) -> None:
    channel_id, password = daemon.create_channel("home")
    other_id, other_password = daemon.create_channel("elsewhere")
    auth = {"channel_id": channel_id, "password": password}
    allow = ["--allow-channel", channel_id, "--allow-type", "message", "--allow-type", "thing"]
    allow += ["--allow-severity", "high", "--allow-severity", "critical"]
    subscribe = token(daemon, channel_id, "subscribe")
    async with (
        bridge(daemon, tmp_path, "--token", subscribe, *allow) as session,
        aiohttp.ClientSession() as http,
    ):
        assert session.init.capabilities.experimental == {"claude/channel": {}}
        assert session.init.server_info.name == "pushgod"
        assert session.init.instructions and "reply tool" in session.init.instructions
        tools = await session.client.list_tools()
        assert sorted(tool.name for tool in tools.tools) == ["reply", "status"]
        warning = await session.stderr_until("warning")
        assert "--allow-thing is empty" in warning
        await session.stderr_until("listening to channel")

        now = int(time.time())
        other = {"channel_id": other_id, "password": other_password, "severity": "high"}
        await send(http, daemon, other | {"title": "another channel"})
        await send(http, daemon, auth | {"title": "too quiet", "severity": "low"})
        thing = await send(
            http, daemon, auth | {"title": "NAS", "observed_at": now}, "thing/create"
        )
        about_thing = {"thing_id": thing["thing_id"], "occurred_at": now, "severity": "high"}
        await send(http, daemon, auth | about_thing | {"title": "about a thing not allowed"})
        running = {"title": "an event", "status": "running", "message": "m", "severity": "critical"}
        await send(http, daemon, auth | running | {"event_time": now}, "event/create")
        sent = await send(
            http,
            daemon,
            auth | {"title": "Backup failed", "body": "disk full\nsda", "severity": "high"},
        )
        sent_at = time.monotonic()

        arrived_at, event = await session.event()
        assert arrived_at - sent_at < WITHIN_S, f"arrived after {arrived_at - sent_at:.3f} s"
        assert session.events.empty(), "a filtered item reached the session"
        assert event.content == "Backup failed\ndisk full\nsda"
        seq = event.meta.pop("seq")
        at = event.meta.pop("at")
        assert event.meta == {
            "source": "pushgod",
            "channel": channel_id,
            "type": "message",
            "action": "created",
            "severity": "high",
            "message_id": sent["message_id"],
        }
        assert int(seq) > 0
        assert at.endswith("+00:00") and at.startswith(time.strftime("%Y-", time.gmtime()))

        status = await session.status()
        [followed] = status["channels"]
        assert followed == {
            "channel_id": channel_id,
            "server": daemon.url,
            "connected": True,
            "last_seq": int(seq),
            "forwarded": 1,
            "filtered": 4,  # the low one, the thing, the message about it, the event
            "problem": None,
            "paired": False,
        }
        assert status["allowlist"] == {
            "channels": [channel_id],
            "types": ["message", "thing"],
            "severities": ["critical", "high"],
            "things": [],
        }
        assert (status["forwarded"], status["filtered"], status["replied"]) == (1, 4, 0)
        assert status["reply_token"] is False


async def test_reply_sends_a_message_that_does_not_come_back_to_the_session(
    daemon: Daemon, tmp_path: Path
) -> None:
    channel_id, password = daemon.create_channel("home")
    subscribe, publish = (
        token(daemon, channel_id, "subscribe"),
        token(daemon, channel_id, "publish"),
    )
    allow_all = ["--allow-type", "*", "--allow-severity", "*", "--allow-thing", "*"]
    async with (
        bridge(
            daemon,
            tmp_path,
            *("--token", subscribe, "--reply-token", publish),
            *("--allow-channel", channel_id, *allow_all),
        ) as session,
        aiohttp.ClientSession() as http,
    ):
        await session.stderr_until("listening to channel")
        result = await session.tool(
            "reply", {"title": "Restarted", "body": "the backup runs again", "severity": "high"}
        )
        assert not result.is_error, result.content
        sent = result.structured_content
        assert sent is not None
        assert sent["channel_id"] == channel_id
        assert sent["accepted"] is True and sent["thing_id"] is None

        [stored] = await read_messages(http, daemon.url, channel_id, password)
        assert stored["message_id"] == sent["message_id"]
        assert (stored["title"], stored["body"], stored["severity"]) == (
            "Restarted",
            "the backup runs again",
            "high",
        )

        # The reply is on the stream before this message: arriving first, this proves the
        # reply was not forwarded back to the session that wrote it.
        after = await send(
            http, daemon, {"channel_id": channel_id, "password": password, "title": "next"}
        )
        _, event = await session.event()
        assert event.meta["message_id"] == after["message_id"]
        status = await session.status()
        assert (status["forwarded"], status["filtered"], status["replied"]) == (1, 0, 1)
        assert status["reply_token"] is True


async def test_a_paired_bridge_opens_sealed_items_but_cannot_reply_without_a_publish_token(
    daemon: Daemon, tmp_path: Path
) -> None:
    channel_id, password = daemon.create_channel("sealed")
    daemon.cli_json("channel", "e2ee", channel_id, "--on")
    code = daemon.cli_json("client", "pair", "--channel", channel_id)["code"]
    config = tmp_path / "config"
    listen = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pushgod", "listen", "--server", daemon.url),
        *("--config-dir", str(config), "--pair", str(code), channel_id),
        env=daemon.environ(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert listen.stderr is not None
    while b"listening" not in await asyncio.wait_for(listen.stderr.readline(), GUARD_S):
        pass
    listen.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(listen.wait(), GUARD_S) == 130

    allow = ["--allow-channel", channel_id, "--allow-type", "message", "--allow-severity", "*"]
    async with bridge(daemon, config, *allow) as session, aiohttp.ClientSession() as http:
        await session.stderr_until("listening to channel")
        auth = {"channel_id": channel_id, "password": password}
        await send(http, daemon, auth | {"title": "Door opened", "body": "front door"})
        [stored] = await read_messages(http, daemon.url, channel_id, password)
        assert stored["title"] == "Encrypted message", "the daemon keeps only the envelope"

        _, event = await session.event()
        assert event.content == "Door opened\nfront door"
        assert "sealed" not in event.meta
        assert (await session.status())["channels"][0]["paired"] is True

        text, code = error_of(await session.tool("reply", {"title": "seen"}))
        assert code == "insufficient_scope"
        assert "--reply-token" in text


async def test_an_empty_allowlist_forwards_nothing_and_says_so(
    daemon: Daemon, tmp_path: Path
) -> None:
    channel_id, _ = daemon.create_channel("home")
    subscribe = token(daemon, channel_id, "subscribe")
    async with bridge(daemon, tmp_path, "--token", subscribe) as session:
        warning = await session.stderr_until("warning")
        assert "nothing will be forwarded to the session: no --allow-channel" in warning
        status = await session.status()
        assert status["channels"] == []
        assert status["allowlist"] == {"channels": [], "types": [], "severities": [], "things": []}
        text, code = error_of(await session.tool("reply", {"title": "hello"}))
        assert code == "channel_id_required"
        assert "follows no channel" in text


async def test_bad_tool_calls_are_tool_errors(daemon: Daemon, tmp_path: Path) -> None:
    channel_id, _ = daemon.create_channel("home")
    publish = token(daemon, channel_id, "publish,subscribe")
    async with bridge(
        daemon, tmp_path, "--token", publish, "--allow-channel", channel_id
    ) as session:
        text, _ = error_of(await session.tool("shout", {"title": "x"}))
        assert "Unknown tool" in text
        text, _ = error_of(await session.tool("reply", {"body": "no title"}))
        assert "title" in text
        text, _ = error_of(await session.tool("reply", {"title": "x", "severity": "loud"}))
        assert "severity" in text
        other = new_channel_id()
        text, code = error_of(await session.tool("reply", {"title": "x", "channel_id": other}))
        assert code == "channel_forbidden" and other in text
        _, code = error_of(await session.tool("reply", {"title": "x", "channel_id": "nope"}))
        assert code == "invalid_channel_id"
        _, code = error_of(await session.tool("reply", {"title": "x", "thing_id": "a b"}))
        assert code == "invalid_thing_id"
        _, code = error_of(await session.tool("reply", {"title": " "}))
        assert code == "title_required"  # the server's own check, passed through
        assert (await session.status())["replied"] == 0


async def test_it_reconnects_and_resumes_across_a_daemon_restart(
    daemon: Daemon, tmp_path: Path
) -> None:
    channel_id, password = daemon.create_channel("home")
    subscribe = token(daemon, channel_id, "subscribe")
    allow = ["--allow-channel", channel_id, "--allow-type", "message", "--allow-severity", "*"]
    async with (
        bridge(daemon, tmp_path, "--token", subscribe, *allow) as session,
        aiohttp.ClientSession() as http,
    ):
        await session.stderr_until("listening to channel")
        port = daemon.run.port
        daemon.stop(signal.SIGTERM)
        await session.stderr_until("closed the stream (shutdown)")
        assert (await session.status())["channels"][0]["connected"] is False
        daemon.spawn(port=port)
        daemon.wait_notify("READY=1")
        auth = {"channel_id": channel_id, "password": password}
        await send(http, daemon, auth | {"title": "while away"})
        await session.stderr_until("reconnected")
        await send(http, daemon, auth | {"title": "after"})
        titles = [(await session.event())[1].content for _ in range(2)]
        assert titles == ["while away", "after"]


async def bridge_process(daemon: Daemon, *args: str) -> asyncio.subprocess.Process:
    """The bridge as a plain process, its stdin a pipe that stays open until closed."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pushgod", "mcp-channel", "--server", daemon.url, *args),
        env=daemon.environ(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_refused_token_ends_the_bridge_though_stdin_stays_open(daemon: Daemon) -> None:
    channel_id, _ = daemon.create_channel("home")
    process = await bridge_process(daemon, "--token", "pgd_unknown", "--allow-channel", channel_id)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    err = (await asyncio.wait_for(process.stderr.read(), GUARD_S)).decode()
    assert await asyncio.wait_for(process.wait(), GUARD_S) == 1
    assert await process.stdout.read() == b"", "stdout is the MCP wire"
    assert "the server refused the token" in err
    assert "(authentication_failed)" in err
    assert "Traceback" not in err
    process.stdin.close()


async def test_an_oversized_client_message_ends_the_bridge_with_a_message(
    daemon: Daemon,
) -> None:
    channel_id, _ = daemon.create_channel("home")
    subscriber = token(daemon, channel_id, "subscribe")
    process = await bridge_process(daemon, "--token", subscriber, "--allow-channel", channel_id)
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(b"x" * (9 * 2**20) + b"\n")  # over the 8 MiB line limit
    with contextlib.suppress(ConnectionError):  # it stops reading at the limit
        await process.stdin.drain()
    err = (await asyncio.wait_for(process.stderr.read(), GUARD_S)).decode()
    assert await asyncio.wait_for(process.wait(), GUARD_S) == 1
    assert "the MCP client sent a message over 8 MiB" in err
    assert "Traceback" not in err
    process.stdin.close()


@pytest.mark.parametrize("how", ["stdin closed", "SIGTERM"])
async def test_it_exits_0_when_stdin_closes_or_on_sigterm(daemon: Daemon, how: str) -> None:
    channel_id, _ = daemon.create_channel("home")
    subscribe = token(daemon, channel_id, "subscribe")
    process = await bridge_process(daemon, "--token", subscribe, "--allow-channel", channel_id)
    assert process.stderr is not None and process.stdin is not None
    while b"listening" not in await asyncio.wait_for(process.stderr.readline(), GUARD_S):
        pass
    if how == "SIGTERM":
        process.send_signal(signal.SIGTERM)
    else:
        process.stdin.close()
    out, err = await asyncio.wait_for(process.communicate(), GUARD_S)
    assert process.returncode == 0, err.decode()
    assert out == b""
    assert "Traceback" not in err.decode()


@pytest.mark.usefixtures("host_environ_cleared")
@pytest.mark.parametrize(
    "args",
    [
        ["--allow-type", "gossip"],
        ["--allow-severity", "loud"],
        ["--allow-channel", "not-a-channel"],
        ["--allow-channel", "*"],
        ["--allow-thing", "two words"],
    ],
)
def test_bad_options_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["mcp-channel", *args])
    assert exit.value.code == 2
    assert "pushgod mcp-channel: error: argument --allow-" in capsys.readouterr().err


def test_an_unpaired_channel_without_a_token_says_how_to_pair(tmp_path: Path) -> None:
    channel_id = new_channel_id()
    config = tmp_path / "pushgod.toml"
    config.write_text("")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pushgod", "--config", str(config), "mcp-channel"),
            *("--server", "http://127.0.0.1:9", "--config-dir", str(tmp_path / "config")),
            *("--allow-channel", channel_id),
        ],
        env=clean_environ(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"pushgod listen --server http://127.0.0.1:9 --pair CODE {channel_id}" in done.stderr
