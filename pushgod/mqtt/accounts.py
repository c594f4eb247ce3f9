"""Device accounts on the broker: Mosquitto's dynamic security plugin, or files it includes.

Either way a device's username is its thing_id and it may only publish to its Thing's
`in/` branch and availability topic and subscribe to its own subtree (peers.md §3.3).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

from pushgod.config import MqttSettings
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.mqtt.tls import tls_context
from pushgod.store.devices import DeviceRow

CONTROL = "$CONTROL/dynamic-security/v1"
REPLY_TIMEOUT_S = 5.0
PBKDF2_ITERATIONS = 101  # what mosquitto_passwd writes ($7$: PBKDF2-SHA512)
BEGIN, END = "# BEGIN pushgod", "# END pushgod"


def device_acl(root: str, thing_id: str) -> list[tuple[str, str]]:
    """(access, topic) pairs: write the in/ branch and availability, read the subtree."""
    base = f"{root}/things/{thing_id}"
    return [("write", f"{base}/in/#"), ("write", f"{base}/availability"), ("read", f"{base}/#")]


class DynsecAccounts:
    """One dynsec client per device, with a role of its own (dynsec ACLs take no %u)."""

    mode = "dynsec"

    def __init__(self, client: aiomqtt.Client, root: str) -> None:
        self._client = client
        self._root = root
        self._lock = asyncio.Lock()

    def password_hash(self, password: str) -> str | None:
        return None

    async def grant(self, thing_id: str, password: str, devices: list[DeviceRow]) -> None:
        existing = await self.command({"command": "getClient", "username": thing_id}, strict=False)
        if "error" not in existing:  # a rotation: new password, end sessions on the old one
            await self.command(
                {"command": "setClientPassword", "username": thing_id, "password": password}
            )
            await self.command({"command": "disableClient", "username": thing_id})
            await self.command({"command": "enableClient", "username": thing_id})
            return
        role = _role(thing_id)
        await self.command({"command": "deleteRole", "rolename": role}, strict=False)
        acls = [
            {
                "acltype": "publishClientSend" if access == "write" else "subscribePattern",
                "topic": topic,
                "allow": True,
            }
            for access, topic in device_acl(self._root, thing_id)
        ]
        await self.command({"command": "createRole", "rolename": role, "acls": acls})
        await self.command(
            {
                "command": "createClient",
                "username": thing_id,
                "password": password,
                "roles": [{"rolename": role}],
            }
        )

    async def revoke(self, thing_id: str, devices: list[DeviceRow]) -> None:
        # Disabling drops the device's live connections; deleting alone might not.
        await self.command({"command": "disableClient", "username": thing_id}, strict=False)
        await self.command({"command": "deleteClient", "username": thing_id}, strict=False)
        await self.command({"command": "deleteRole", "rolename": _role(thing_id)}, strict=False)

    async def command(self, command: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """Run one dynsec command and return its response; with `strict`, raise on error."""
        async with self._lock:
            body = json.dumps({"commands": [command]}).encode()
            await self._client.publish(CONTROL, body, qos=1)
            try:
                async with asyncio.timeout(REPLY_TIMEOUT_S):
                    async for message in self._client.messages:
                        if message.topic.value == f"{CONTROL}/response":
                            break
            except TimeoutError:
                raise PushgodError(
                    ErrorCode.BROKER_UNAVAILABLE,
                    "the broker did not answer on $CONTROL/dynamic-security/v1 "
                    "(is the dynamic security plugin loaded?)",
                ) from None
        assert isinstance(message.payload, bytes)
        response: dict[str, Any] = json.loads(message.payload)["responses"][0]
        if strict and "error" in response:
            raise PushgodError(
                ErrorCode.BROKER_UNAVAILABLE,
                f"the broker refused {command['command']}: {response['error']}",
            )
        return response


def _role(thing_id: str) -> str:
    return f"pushgod-device-{thing_id}"


class FileAccounts:
    """A Mosquitto password file and ACL file, rebuilt from the device registry.

    Lines of other users in the password file, and everything outside pushgod's block
    of the ACL file, are kept as they are.
    """

    mode = "files"

    def __init__(self, settings: MqttSettings, data_dir: Path) -> None:
        self._settings = settings
        self.password_file = Path(settings.password_file or data_dir / "mosquitto" / "passwd")
        self.acl_file = Path(settings.acl_file or data_dir / "mosquitto" / "acl")

    def password_hash(self, password: str) -> str | None:
        return mosquitto_hash(password)

    async def grant(self, thing_id: str, password: str, devices: list[DeviceRow]) -> None:
        self._write(devices, gone=None)

    async def revoke(self, thing_id: str, devices: list[DeviceRow]) -> None:
        self._write(devices, gone=thing_id)

    def _write(self, devices: list[DeviceRow], gone: str | None) -> None:
        own = self._settings.username
        managed = {row.thing_id for row in devices} | ({gone} if gone else set())
        if self._settings.password:  # else its line, if any, is the user's to keep
            managed.add(own)
        kept = [
            line
            for line in _lines(self.password_file)
            if line.strip() and line.split(":", 1)[0] not in managed
        ]
        entries = [f"{row.thing_id}:{row.password_hash}" for row in devices if row.password_hash]
        if self._settings.password:
            entries.insert(0, f"{own}:{mosquitto_hash(self._settings.password)}")
        _replace(self.password_file, "".join(f"{line}\n" for line in kept + entries))

        root, prefix = self._settings.root, self._settings.ha_prefix
        block = [
            f"{BEGIN}: written by `pushgod device`; edits inside this block are lost",
            f"user {own}",
            f"topic readwrite {root}/#",
            f"topic readwrite {prefix}/#",
        ]
        for row in devices:
            block += ["", f"user {row.thing_id}"]
            block += [f"topic {access} {topic}" for access, topic in device_acl(root, row.thing_id)]
        block.append(END)
        outside, inside = [], False
        for line in _lines(self.acl_file):
            inside = (inside or line.startswith(BEGIN)) and not line.startswith(END)
            if not inside and not line.startswith(END):
                outside.append(line)
        while outside and not outside[-1].strip():
            outside.pop()
        text = "\n".join([*outside, "", *block] if outside else block) + "\n"
        _replace(self.acl_file, text)

    def reload_hint(self) -> str:
        return (
            f"Mosquitto must read {self.password_file} (password_file) and {self.acl_file} "
            "(acl_file); reload it to apply: sudo systemctl reload mosquitto"
        )


def mosquitto_hash(password: str) -> str:
    """The `$7$` PBKDF2-SHA512 line mosquitto_passwd writes."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"$7${PBKDF2_ITERATIONS}${encoded[0]}${encoded[1]}"


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def _replace(path: Path, text: str) -> None:
    """Write atomically, readable by owner and group only (the broker's group may read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextlib.asynccontextmanager
async def open_accounts(
    settings: MqttSettings, data_dir: Path
) -> AsyncIterator[DynsecAccounts | FileAccounts]:
    """The provisioning backend `mqtt.provisioning` names; auto tries dynsec first."""
    if settings.provisioning == "files":
        yield FileAccounts(settings, data_dir)
        return
    username = settings.admin_username or settings.username
    password = settings.admin_password if settings.admin_username else settings.password
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=username or None,
        password=password or None,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=REPLY_TIMEOUT_S,
        identifier=f"pushgod-provision-{secrets.token_hex(4)}",
        tls_context=tls_context(settings),
    )
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as error:
        raise PushgodError(
            ErrorCode.BROKER_UNAVAILABLE,
            f"cannot connect to the MQTT broker {settings.host}:{settings.port} as "
            f"{username!r}: {error}",
        ) from None
    try:
        accounts = DynsecAccounts(client, settings.root)
        usable = await _dynsec_usable(client, accounts)
        if not usable and settings.provisioning == "dynsec":
            raise PushgodError(
                ErrorCode.BROKER_UNAVAILABLE,
                f"{username!r} cannot use the dynamic security plugin "
                "($CONTROL/dynamic-security/v1)",
            )
        yield accounts if usable else FileAccounts(settings, data_dir)
    finally:
        await client.__aexit__(None, None, None)


async def _dynsec_usable(client: aiomqtt.Client, accounts: DynsecAccounts) -> bool:
    codes = await client.subscribe(f"{CONTROL}/response", qos=1)
    if any(getattr(code, "is_failure", False) for code in codes):
        return False
    try:
        reply = await accounts.command({"command": "listRoles", "count": 1}, strict=False)
    except PushgodError:
        return False
    return "error" not in reply
