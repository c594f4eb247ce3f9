"""MCP send throughput: `pushgo.message.send` over /mcp next to HTTP /message, in one run.

    python bench/mcp_send.py [--duration S] [--concurrency N] [--smoke]

Starts one daemon with MCP on and a gateway token, gets an OAuth access token through
the consent pages over plain HTTP, then runs HTTP, MCP (OAuth), HTTP, MCP (legacy), HTTP
with the same client and concurrency, prints one table and writes it as JSON to
bench/results/mcp-<timestamp>.json. See bench/README.md for how to read it.

The client is raw aiohttp speaking JSON-RPC, which keeps it cheap next to the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import html
import itertools
import json
import os
import re
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import aiohttp  # noqa: E402
import script  # noqa: E402
from harness import (  # noqa: E402
    BenchError,
    Server,
    memory_bytes,
)
from loadgen import Call, LoadResult, drive, session  # noqa: E402
from report import NOISY_OTHER_CPU, Headline, add_common_arguments, at_least, smoke_suffix  # noqa: E402
from send import (  # noqa: E402
    MESSAGE_BODY,
    body_for,
    cli_create_channel,
    daemon_environ,
    start_daemon,
    stop,
)

TOOL = "pushgo.message.send"
PROTOCOL_VERSION = "2025-11-25"  # the handshake era: initialize, then Mcp-Session-Id
ACCEPT = "application/json, text/event-stream"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never followed: the code is read off Location
TARGET = 0.50
MODES = ("oauth", "legacy")
ORDER = ("http-1", "mcp-oauth", "http-2", "mcp-legacy", "http-3")
REFERENCES = {"mcp-oauth": ("http-1", "http-2"), "mcp-legacy": ("http-2", "http-3")}
RUN_LEGEND = {
    "http-1": "POST /message, channel password in the body, gateway token as bearer",
    "mcp-oauth": f"tools/call {TOOL} on initialized sessions, OAuth access token",
    "http-2": "HTTP again, between the two MCP runs",
    "mcp-legacy": f"tools/call {TOOL}, gateway token as bearer, password argument",
    "http-3": "HTTP again; each MCP run's reference is the mean of the HTTP runs around it",
}
BUSY_CLIENT_CPU = 80.0
"""Percent of one CPU used by the client above which the rate may be the client's."""


@dataclass(frozen=True)
class Plan:
    duration_s: float
    warmup_s: float
    concurrency: int
    smoke: bool


def plan_from(args: argparse.Namespace) -> Plan:
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1:
        raise SystemExit("mcp_send: duration and concurrency must be positive")
    if args.smoke:
        return Plan(0.4, 0.2, min(args.concurrency, 4), True)
    return Plan(args.duration, args.warmup, args.concurrency, False)


# --- the load --------------------------------------------------------------------------


def http_call(url: str, body: bytes, gateway_token: str) -> Call:
    """POST /message; right when 200 with `"success": true`."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {gateway_token}"}

    async def call(client: aiohttp.ClientSession) -> str | None:
        async with client.post(url, data=body, headers=headers) as response:
            raw = await response.read()
            status = response.status
        if status != 200:
            return f"HTTP {status}: {raw[:200]!r}"
        if json.loads(raw).get("success") is not True:
            return f"not a success: {raw[:200]!r}"
        return None

    return call


def jsonrpc_messages(content_type: str, raw: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an answer: an SSE body (`event: message` / `data: {...}`),
    as pushgod sends today, or a JSON one, which the transport allows too."""
    if content_type == "application/json":
        return [json.loads(raw)]
    messages = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            messages.append(json.loads(line[5:]))
    return messages


def jsonrpc_headers(bearer: str, session_id: str | None = None) -> dict[str, str]:
    headers = {
        "Accept": ACCEPT,
        "Content-Type": "application/json",
        "Authorization": f"Bearer {bearer}",
    }
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
        headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
    return headers


def tool_call(url: str, bearer: str, session_id: str, arguments: dict[str, Any]) -> Call:
    """tools/call on one session with increasing ids; right when the answer is the tool's
    result for that id, not an error, carrying a successful send envelope."""
    params = json.dumps({"name": TOOL, "arguments": arguments}, separators=(",", ":"))
    head, tail = b'{"jsonrpc":"2.0","id":', f',"method":"tools/call","params":{params}}}'.encode()
    headers = jsonrpc_headers(bearer, session_id)
    ids = itertools.count(2)  # 1 was initialize

    async def call(client: aiohttp.ClientSession) -> str | None:
        call_id = next(ids)
        body = head + str(call_id).encode() + tail
        async with client.post(url, data=body, headers=headers) as response:
            raw = await response.read()
            status, content_type = response.status, response.content_type
        if status != 200:
            return f"HTTP {status}: {raw[:200]!r}"
        for message in jsonrpc_messages(content_type, raw):
            if message.get("id") != call_id:
                continue  # a notification on the call's stream
            answer = message.get("result")
            if not isinstance(answer, dict) or answer.get("isError"):
                return f"tool error: {raw[:300]!r}"
            payload = answer.get("structuredContent", {}).get("payload", {})
            if payload.get("success") is not True:
                return f"not a successful send: {raw[:300]!r}"
            return None
        return f"no answer to call {call_id}: {raw[:300]!r}"

    return call


async def open_session(client: aiohttp.ClientSession, url: str, bearer: str) -> str:
    """initialize, then notifications/initialized; returns the Mcp-Session-Id."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "pushgod-bench", "version": "0"},
        },
    }
    async with client.post(url, json=initialize, headers=jsonrpc_headers(bearer)) as reply:
        raw = await reply.read()
        if reply.status != 200 or "mcp-session-id" not in reply.headers:
            raise BenchError(f"MCP initialize: HTTP {reply.status}: {raw[:300]!r}")
        session_id = reply.headers["mcp-session-id"]
        answers = jsonrpc_messages(reply.content_type, raw)
    if not answers or answers[0].get("result", {}).get("protocolVersion") != PROTOCOL_VERSION:
        raise BenchError(f"MCP initialize: unexpected answer {raw[:300]!r}")
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = jsonrpc_headers(bearer, session_id)
    async with client.post(url, json=initialized, headers=headers) as reply:
        if reply.status != 202:
            raise BenchError(f"notifications/initialized: HTTP {reply.status}")
    return session_id


async def close_session(
    client: aiohttp.ClientSession, url: str, bearer: str, session_id: str
) -> str | None:
    async with client.delete(url, headers=jsonrpc_headers(bearer, session_id)) as reply:
        if reply.status not in (200, 204):
            return f"DELETE of MCP session: HTTP {reply.status}"
    return None


# --- OAuth, the way an assistant and its user get a token ------------------------------


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    if found is None:
        raise BenchError(f"consent page: no hidden field {name}")
    return html.unescape(found.group(1))


async def oauth_access_token(base_url: str, channel: tuple[str, str]) -> str:
    """Register a client, consent with the channel's password, exchange the code.

    The consent form is posted as a browser would (its CSRF cookie in a cookie jar that
    accepts cookies from an IP address), as tests/integration/oauth_flow.py does.
    """
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url, cookie_jar=jar, timeout=timeout) as http:
        metadata = {"client_name": "pushgod bench", "redirect_uris": [REDIRECT_URI]}
        async with http.post("/oauth/register", json=metadata) as reply:
            if reply.status != 201:
                raise BenchError(f"/oauth/register: HTTP {reply.status}: {await reply.text()}")
            client_id = (await reply.json())["client_id"]
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": base64.urlsafe_b64encode(digest).decode().rstrip("="),
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(8),
            "scope": "mcp:tools",
            "resource": base_url + "/mcp",
        }
        async with http.get("/oauth/authorize", params=params) as page:
            text = await page.text()
            if page.status != 200:
                raise BenchError(f"GET /oauth/authorize: HTTP {page.status}: {text[:300]}")
        for action, extra in (("add", channel), ("allow", None)):
            form = {
                "csrf_token": _hidden(text, "csrf_token"),
                "verified": _hidden(text, "verified"),
            }
            if extra is not None:
                form.update(channel_id=extra[0], password=extra[1])
            form["action"] = action
            async with http.post(
                "/oauth/authorize", params=params, data=form, allow_redirects=False
            ) as reply:
                text = await reply.text()
                expected = 200 if action == "add" else 303
                if reply.status != expected:
                    raise BenchError(f"consent {action}: HTTP {reply.status}: {text[:300]}")
                location = reply.headers.get("Location", "")
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            raise BenchError(f"consent gave no code: {location}")
        exchange = {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": base_url + "/mcp",
        }
        async with http.post("/oauth/token", data=exchange) as reply:
            tokens = await reply.json()
            if reply.status != 200:
                raise BenchError(f"/oauth/token: HTTP {reply.status}: {tokens}")
    token: str = tokens["access_token"]
    return token


# --- the run ---------------------------------------------------------------------------


def arguments(channel_id: str, password: str | None) -> dict[str, Any]:
    """The tool's arguments: send.py's message, the password only in legacy mode."""
    args: dict[str, Any] = {
        "channel_id": channel_id,
        "title": "bench",
        "body": MESSAGE_BODY,
        "severity": "normal",
        "tags": ["bench"],
    }
    if password is not None:
        args["password"] = password
    return args


@dataclass
class Setup:
    server: Server
    channel: tuple[str, str]
    gateway_token: str
    access_token: str


async def http_load(plan: Plan, setup: Setup, target: str) -> LoadResult:
    call = http_call(setup.server.url + "/message", body_for(*setup.channel), setup.gateway_token)
    async with session(plan.concurrency) as client:
        return await drive(
            target,
            client,
            [call] * plan.concurrency,
            duration_s=plan.duration_s,
            warmup_s=plan.warmup_s,
            server_pid=setup.server.pid,
        )


async def mcp_load(plan: Plan, setup: Setup, target: str, mode: str) -> LoadResult:
    url = setup.server.url + "/mcp"
    channel_id, password = setup.channel
    if mode == "oauth":
        bearer, args = setup.access_token, arguments(channel_id, None)
    else:
        bearer, args = setup.gateway_token, arguments(channel_id, password)
    async with session(plan.concurrency) as client:
        sessions = await asyncio.gather(
            *(open_session(client, url, bearer) for _ in range(plan.concurrency))
        )
        calls = [tool_call(url, bearer, session_id, args) for session_id in sessions]
        result = await drive(
            target,
            client,
            calls,
            duration_s=plan.duration_s,
            warmup_s=plan.warmup_s,
            server_pid=setup.server.pid,
        )
        for session_id in sessions:
            problem = await close_session(client, url, bearer, session_id)
            if problem is not None:
                result.note_error(problem)
    return result


def run(plan: Plan, workdir: Path, problems: list[str]) -> dict[str, Any]:
    gateway_token = secrets.token_urlsafe(32)
    extra = {"PUSHGOD_MCP_ENABLED": "true", "PUSHGOD_SERVER_GATEWAY_TOKEN": gateway_token}
    channel = cli_create_channel(daemon_environ(workdir, 0, **extra), workdir, "bench mcp")
    server = start_daemon(workdir, "pushgod-mcp", **extra)
    try:

        async def scenarios() -> dict[str, Any]:
            started = time.perf_counter()
            access_token = await oauth_access_token(server.url, channel)
            setup = Setup(server, channel, gateway_token, access_token)
            results: dict[str, Any] = {"oauth_setup_s": time.perf_counter() - started}
            for name in ORDER:
                if name.startswith("http"):
                    results[name] = await http_load(plan, setup, name)
                else:
                    mode = name.removeprefix("mcp-")
                    results[name] = await mcp_load(plan, setup, name, mode)
            return results

        results = asyncio.run(scenarios())
        results["daemon_rss_bytes_end"] = memory_bytes(server.pid)
    finally:
        stop(server, problems)
    return results


# --- report ----------------------------------------------------------------------------


def per_call_us(seconds: float, result: LoadResult) -> float:
    return 1e6 * seconds / result.measured if result.measured else 0.0


def reference(results: dict[str, Any], name: str) -> float:
    if name in REFERENCES:
        return statistics.mean(results[n].rate for n in REFERENCES[name])
    return statistics.mean(results[n].rate for n in ORDER if n.startswith("http"))


def ratios(results: dict[str, Any]) -> dict[str, float]:
    return {name: results[name].rate / (reference(results, name) or 1.0) for name in ORDER}


def table(plan: Plan, results: dict[str, Any]) -> list[dict[str, str]]:
    http_names = [n for n in ORDER if n.startswith("http")]
    http_cost = statistics.mean(
        per_call_us(results[n].server_cpu_s, results[n]) for n in http_names
    )
    rows = []
    for name, ratio in ratios(results).items():
        result: LoadResult = results[name]
        target = name in REFERENCES
        srv_us = per_call_us(result.server_cpu_s, result)

        def pct(seconds: float, result: LoadResult = result) -> str:
            return f"{100 * seconds / result.duration_s:.0f}"

        rows.append(
            {
                "scenario": name,
                "calls/s": f"{result.rate:,.0f}",
                "http ref": f"{reference(results, name):,.0f}",
                "ratio": f"{ratio:.2f}",
                "target": f">= {TARGET:.2f}" if target else "-",
                "result": ("ok" if ratio >= TARGET else "MISSED") if target else "-",
                "p50/p99 ms": f"{result.p50_ms:.1f}/{result.p99_ms:.1f}",
                "failed": str(result.errors),
                "srv us/call": f"{srv_us:.0f}",
                "cost ratio": f"{http_cost / srv_us:.2f}" if srv_us else "-",
                "cli us/call": f"{per_call_us(result.client_cpu_s, result):.0f}",
                "cpu% srv/cli/oth": "/".join(
                    pct(s) for s in (result.server_cpu_s, result.client_cpu_s, result.other_cpu_s)
                ),
            }
        )
    return rows


def notes(plan: Plan, results: dict[str, Any]) -> list[str]:
    found = []
    other = max(100 * results[n].other_cpu_s / results[n].duration_s for n in ORDER)
    client = {n: 100 * results[n].client_cpu_s / results[n].duration_s for n in ORDER}
    for name in ORDER:
        if results[name].errors:
            samples = results[name].error_samples
            found.append(f"{name}: {results[name].errors} failed calls, e.g. {samples[0]}")
    busy = [f"{n} {client[n]:.0f}%" for n in ORDER if client[n] > BUSY_CLIENT_CPU]
    if busy:
        found.append(
            "the client used more than 80% of a CPU in " + ", ".join(busy) + ": that rate may "
            "be the client's; the srv us/call and cost ratio are the daemon's own figures"
        )
    if other > NOISY_OTHER_CPU:
        found.append(
            f"other processes used up to {other:.0f}% of a CPU during the measured windows: "
            "rates and ratios are disturbed; the cost ratio is the steadier figure"
        )
    return found


NAME = "mcp"
LEGEND = (
    "\n".join(f"{name:<11} {text}" for name, text in RUN_LEGEND.items())
    + """
srv/cli us/call: daemon / client CPU per measured call; cost ratio: the HTTP runs'
mean srv us/call over this one's; cpu%: daemon, client and other processes during
the measured window, in percent of one CPU"""
)


def title(plan: Plan) -> str:
    return (
        f"pushgod MCP send benchmark: {TOOL} vs POST /message, concurrency "
        f"{plan.concurrency}, {plan.duration_s:g} s per run after {plan.warmup_s:g} s warm-up, "
        f"{os.cpu_count()} CPUs" + smoke_suffix(plan.smoke)
    )


def headlines(plan: Plan, results: dict[str, Any]) -> list[Headline]:
    return [
        Headline(
            "6 MCP",
            f"{TOOL}, {mode} mode, concurrency {plan.concurrency}",
            f"{results[name].rate:,.0f} calls/s",
            f"HTTP /message {reference(results, name):,.0f} msg/s",
            *at_least(ratio, TARGET),
        )
        for name, mode in (("mcp-oauth", "OAuth"), ("mcp-legacy", "legacy"))
        for ratio in (ratios(results)[name],)
    ]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=16, help="workers (and sessions)")
    add_common_arguments(parser)
    return parser


def failed(results: dict[str, Any], problems: list[str]) -> bool:
    return bool(problems) or any(results[name].errors for name in ORDER)


def details(plan: Plan, results: dict[str, Any]) -> dict[str, Any]:
    runs = {}
    for name in ORDER:
        result: LoadResult = results[name]
        runs[name] = result.as_dict() | {
            "calls_per_s": round(result.rate, 1),
            "server_us_per_call": round(per_call_us(result.server_cpu_s, result), 1),
            "client_us_per_call": round(per_call_us(result.client_cpu_s, result), 1),
        }
    return {
        "tool": TOOL,
        "protocol_version": PROTOCOL_VERSION,
        "target": TARGET,
        "ratios": {name: round(ratios(results)[name], 3) for name in REFERENCES},
        "runs": runs,
        "oauth_setup_s": round(results["oauth_setup_s"], 3),
        "daemon_rss_bytes_end": results["daemon_rss_bytes_end"],
    }


def main(argv: list[str] | None = None) -> int:
    return script.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
