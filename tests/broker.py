"""A real Mosquitto broker for tests: dynamic security, persistence, a bridge and an HA account.

    async with Broker() as broker:
        async with broker.client(broker.bridge_username, broker.bridge_password) as client:
            ...

The broker runs from a temp directory readable by user `mosquitto` (it drops root privileges),
keeps its dynsec JSON and `mosquitto.db` there, and `restart()` reuses the same port and data.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiomqtt import Client, MqttError, ProtocolVersion

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
READY_TIMEOUT = 10.0


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _plugin_path() -> str:
    found = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so"))
    if not found:
        raise RuntimeError("mosquitto_dynamic_security.so not found under /usr/lib/*/")
    return found[0]


class Broker:
    """One mosquitto process on 127.0.0.1; the first `start()` also provisions the accounts."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pushgod-mosquitto-"))  # removed on exit
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.admin_username, self.admin_password = "admin", secrets.token_urlsafe(16)
        self.bridge_username, self.bridge_password = "pushgod", secrets.token_urlsafe(16)
        self.ha_username, self.ha_password = "homeassistant", secrets.token_urlsafe(16)
        self.log_path = self.directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Broker:
        try:
            await self.start()
        except BaseException:
            self._remove_directory()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        self._remove_directory()

    def _remove_directory(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def client(self, username: str, password: str, **kwargs: Any) -> Client:
        """An MQTT v5 aiomqtt client for this broker; create it inside the running loop."""
        return Client(
            self.host,
            self.port,
            username=username,
            password=password,
            protocol=ProtocolVersion.V5,
            **kwargs,
        )

    async def first(self, topic: str, wanted: Callable[[bytes], bool]) -> bytes:
        """The first payload on `topic` (retained or live) that `wanted` accepts, as Home
        Assistant's account sees it; fails after READY_TIMEOUT * 2."""
        async with self.client(self.ha_username, self.ha_password) as client:
            await client.subscribe(topic, qos=1)
            async with asyncio.timeout(READY_TIMEOUT * 2):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    if wanted(message.payload):
                        return message.payload
        raise AssertionError(f"the broker stopped delivering {topic}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the broker's log (`log_type all`: denials are logged at debug)."""
        if not self.log_path.exists():
            return "(no broker log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("broker already running")
        dynsec_path = self.directory / "dynsec.json"
        first_start = not dynsec_path.exists()
        if first_start:
            self._write_config(dynsec_path)
        self._process = self._spawn()
        try:
            await self._wait_ready()
            if first_start:
                await self._provision()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def restart(self) -> None:
        """Stop and start again on the same port; retained messages and sessions are persisted."""
        await self.stop()
        await self.start()

    async def dynsec(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send dynsec commands as admin; return the responses, raise if any reports an error."""
        tag = secrets.token_hex(8)
        tagged = [{**c, "correlationData": f"{tag}-{i}"} for i, c in enumerate(commands)]
        responses: dict[str, dict[str, Any]] = {}
        async with self.client(self.admin_username, self.admin_password) as client:
            await client.subscribe(RESPONSE_TOPIC, qos=1)
            await client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
            async with asyncio.timeout(5):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    for response in json.loads(message.payload)["responses"]:
                        responses[response.get("correlationData", "")] = response
                    if all(c["correlationData"] in responses for c in tagged):
                        break
        ordered = [responses[c["correlationData"]] for c in tagged]
        errors = [r for r in ordered if "error" in r]
        if errors:
            raise RuntimeError(f"dynsec command failed: {errors}")
        return ordered

    async def create_client(self, username: str, password: str, acls: list[dict[str, Any]]) -> None:
        """Create role `<username>-role` with `acls` and a client that has only that role."""
        role = f"{username}-role"
        await self.dynsec(
            [
                {"command": "createRole", "rolename": role, "acls": acls},
                {
                    "command": "createClient",
                    "username": username,
                    "password": password,
                    "roles": [{"rolename": role}],
                },
            ]
        )

    def _write_config(self, dynsec_path: Path) -> None:
        subprocess.run(
            [
                "mosquitto_ctrl",
                "dynsec",
                "init",
                str(dynsec_path),
                self.admin_username,
                self.admin_password,
            ],
            check=True,
            capture_output=True,
        )
        (self.directory / "mosquitto.conf").write_text(
            f"per_listener_settings false\n"
            f"listener {self.port} {self.host}\n"
            f"allow_anonymous false\n"
            f"plugin {_plugin_path()}\n"
            f"plugin_opt_config_file {dynsec_path}\n"
            f"persistence true\n"
            f"persistence_location {self.directory}/\n"
            f"max_inflight_messages 100\n"
            f"log_dest stdout\n"
            f"log_type all\n"
        )
        if os.geteuid() == 0:  # mosquitto drops to user `mosquitto` and rewrites these files
            for path in [self.directory, *self.directory.iterdir()]:
                shutil.chown(path, "mosquitto", "mosquitto")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            # Line-buffered, so tests can follow the log as the broker writes it.
            return subprocess.Popen(
                ["stdbuf", "-oL", "mosquitto", "-c", str(self.directory / "mosquitto.conf")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def _wait_ready(self) -> None:
        deadline, backoff = time.monotonic() + READY_TIMEOUT, 0.02
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                async with self.client(self.admin_username, self.admin_password, timeout=2):
                    return
            except MqttError as error:
                if time.monotonic() + backoff > deadline:
                    raise RuntimeError(
                        f"mosquitto not ready on {self.port} after {READY_TIMEOUT}s ({error}):\n"
                        f"{self.log_tail()}"
                    ) from error
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.5)

    async def _provision(self) -> None:
        both = ["pushgod/#", "homeassistant/#"]
        bridge_acls = [
            _acl(kind, topic)
            for topic in both
            for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
        ]
        ha_acls = [
            _acl("subscribePattern", "#"),
            _acl("publishClientReceive", "#"),
            _acl("publishClientSend", "homeassistant/status"),
        ]
        await self.create_client(self.ha_username, self.ha_password, ha_acls)
        await self.dynsec(
            [
                {"command": "createRole", "rolename": "pushgod-bridge", "acls": bridge_acls},
                {
                    "command": "createClient",
                    "username": self.bridge_username,
                    "password": self.bridge_password,
                    "roles": [{"rolename": "pushgod-bridge"}, {"rolename": "admin"}],
                },
            ]
        )


async def logged(log_path: Path, *parts: str, count: int = 1) -> None:
    """Until the broker's log has `count` lines holding every part.

    The log is the broker's only sign of some things (a reload, a message handed to a
    subscriber), so it is read again every 50 ms until they show.
    """
    async with asyncio.timeout(READY_TIMEOUT * 2):
        while True:
            text = await asyncio.to_thread(log_path.read_text, errors="replace")
            lines = text.splitlines()
            if sum(all(part in line for part in parts) for line in lines) >= count:
                return
            await asyncio.sleep(0.05)
