"""Who a listener is: the paired identity stored on this machine, one file per server and channel.

A paired client keeps its X25519 key pair, client id and token in
`<config dir>/clients/<channel>@<server>.json` (the directory mode 0700, the file 0600),
so later runs reuse it and open the fields the channel seals (docs/e2ee.md).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pushgod.remote.api import request_json
from pushgod.remote.errors import Stop

if TYPE_CHECKING:
    import aiohttp


def config_dir(option: str | None) -> Path:
    """--config-dir, else $XDG_CONFIG_HOME/pushgod, else ~/.config/pushgod."""
    if option:
        return Path(option)
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "pushgod"


def server_slug(server: str) -> str:
    """`http://127.0.0.1:8750` → `127.0.0.1_8750`: a file name part for one server."""
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname}:{port}{parts.path}").strip("_")


def identity_path(directory: Path, server: str, channel_id: str) -> Path:
    return directory / "clients" / f"{channel_id}@{server_slug(server)}.json"


def load_identity(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Stop(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), str) for key in ("client_id", "token", "private_key")
    ):
        raise Stop(f"{path} is not a pushgod client identity; pair again with --pair CODE")
    return data


def save_identity(path: Path, data: Mapping[str, Any]) -> None:
    """Write the file whole or not at all, readable by its owner only from the start."""
    path.parent.parent.parent.mkdir(parents=True, exist_ok=True)  # ~/.config, say
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(mode=0o700, exist_ok=True)
    path.parent.chmod(0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


@dataclass
class Identity:
    """Who listens: the token, and for a paired client its id and key pair."""

    token: str
    client_id: str | None = None
    secret_key: bytes | None = None
    public_key: bytes | None = None
    path: Path | None = None
    stored: dict[str, Any] | None = None

    @classmethod
    def of(cls, data: dict[str, Any], path: Path) -> Identity:
        import nacl.public

        from pushgod.model import sealing
        from pushgod.model.errors import PushgodError

        try:
            secret = sealing.b64decode(data["private_key"], "private_key", 32)
        except PushgodError:
            raise Stop(f"{path} holds no valid private key; pair again with --pair CODE") from None
        public = bytes(nacl.public.PrivateKey(secret).public_key)
        return cls(data["token"], data["client_id"], secret, public, path, data)


async def pair(session: aiohttp.ClientSession, server: str, code: str, name: str) -> dict[str, Any]:
    """Redeem the code for a new key pair: what the identity file stores."""
    import nacl.public

    from pushgod.model import sealing

    key = nacl.public.PrivateKey.generate()
    public_key = sealing.b64encode(bytes(key.public_key))
    body = {"code": code, "public_key": public_key, "name": name}
    reply = await request_json(session, "POST", f"{server}/api/v1/pair", json=body)
    data = reply["data"]
    return {
        "server": server,
        "channel_id": data["channel_id"],
        "client_id": data["client_id"],
        "name": data.get("name", name),
        "token": data["token"],
        "private_key": sealing.b64encode(bytes(key)),
        "public_key": public_key,
    }


def stored_server(directory: Path, channel_id: str) -> str | None:
    """The server of the one identity stored for the channel, if there is exactly one."""
    found = sorted((directory / "clients").glob(f"{channel_id}@*.json"))
    if len(found) != 1:
        return None
    data = load_identity(found[0])
    server = data.get("server") if data else None
    return server if isinstance(server, str) else None


def stored_identity(
    directory: Path,
    server: str,
    channel_id: str,
    how: str = "pass --pair CODE (pushgod client pair on the server prints one) or --token T",
) -> Identity:
    """The identity stored for the server and channel; Stop, saying `how` to get one, if none."""
    path = identity_path(directory, server, channel_id)
    stored = load_identity(path)
    if stored is None:
        raise Stop(f"this machine is not paired with channel {channel_id} at {server}: {how}")
    return Identity.of(stored, path)
