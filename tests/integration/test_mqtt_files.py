"""Files mode: the password file and ACL file pushgod writes, read by a real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
from broker import _free_port, logged

from pushgod.config import Settings, load_settings
from pushgod.mqtt.accounts import BEGIN, END, open_accounts
from pushgod.service.services import Services

GUARD_S = 20.0
FOREIGN_USER = "homeassistant:$7$101$c2FsdHNhbHRzYWx0$" + "A" * 86 + "=="
FOREIGN_ACL = "user homeassistant\ntopic read #"


class FileBroker:
    """Mosquitto reading the files of `settings` (mqtt.password_file, mqtt.acl_file)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.log = directory / "mosquitto.log"
        config = directory / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\n"
            + ("user root\n" if os.geteuid() == 0 else "")
            + f"allow_anonymous false\npassword_file {directory / 'passwd'}\n"
            f"acl_file {directory / 'acl'}\nlog_dest stdout\nlog_type all\n"
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["stdbuf", "-oL", "mosquitto", "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def client(self, username: str, password: str) -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            username=username,
            password=password,
            protocol=aiomqtt.ProtocolVersion.V5,
        )

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(GUARD_S)


@pytest.fixture
def directory() -> Iterator[Path]:
    # Not tmp_path: it lives under a 0700 directory that a broker run as another user
    # could not enter.
    with tempfile.TemporaryDirectory(prefix="pushgod-files-") as name:
        yield Path(name)


def files_settings(directory: Path, port: int) -> Settings:
    return load_settings(
        environ={
            "PUSHGOD_STORAGE_DATA_DIR": str(directory / "data"),
            "PUSHGOD_MQTT_PROVISIONING": "files",
            "PUSHGOD_MQTT_PORT": str(port),
            "PUSHGOD_MQTT_PASSWORD": "bridge-secret",
            "PUSHGOD_MQTT_PASSWORD_FILE": str(directory / "passwd"),
            "PUSHGOD_MQTT_ACL_FILE": str(directory / "acl"),
        }
    )


@pytest.fixture
async def services(directory: Path) -> AsyncIterator[Services]:
    opened = Services(files_settings(directory, _free_port()))
    opened.open()
    yield opened
    opened.close()


async def _connects(broker: FileBroker, username: str, password: str) -> bool:
    try:
        async with broker.client(username, password):
            return True
    except aiomqtt.MqttError:
        return False


async def test_the_broker_accepts_the_files_and_confines_each_device(
    services: Services, directory: Path
) -> None:
    settings = services.settings
    (directory / "passwd").write_text(FOREIGN_USER + "\n")
    (directory / "acl").write_text(FOREIGN_ACL + "\n")
    row, _ = await services.channels.create(None, "home")
    passwords = {}
    async with open_accounts(settings.mqtt, settings.data_dir) as accounts:
        assert accounts.mode == "files"
        for thing_id in ("nas", "garage"):
            _, passwords[thing_id] = await services.devices.add(
                None, accounts, thing_id, row.id, create=True
            )
    assert FOREIGN_USER in (directory / "passwd").read_text().splitlines()
    acl = (directory / "acl").read_text()
    assert acl.startswith(FOREIGN_ACL) and BEGIN in acl and acl.rstrip().endswith(END)
    assert "bridge-secret" not in (directory / "passwd").read_text()
    assert oct((directory / "passwd").stat().st_mode & 0o777) == "0o640"

    broker = FileBroker(directory, settings.mqtt.port)
    try:
        await logged(broker.log, "running")
        assert await _connects(broker, "pushgod", "bridge-secret")
        assert not await _connects(broker, "nas", "wrong")
        # Mosquitto grants subscriptions and filters each message by the ACL, so what
        # shows is which messages get through, in order after refused ones.
        async with (
            broker.client("pushgod", "bridge-secret") as bridge,
            broker.client("nas", passwords["nas"]) as nas,
        ):
            await bridge.subscribe("pushgod/things/+/in/#", qos=1)
            await nas.subscribe("pushgod/things/+/state", qos=1)
            await nas.publish("pushgod/things/garage/in/attr/door", b"open", qos=1)
            await nas.publish("pushgod/things/nas/in/attr/disk", b"41", qos=1)
            await bridge.publish("pushgod/things/garage/state", b"{}", qos=1)
            await bridge.publish("pushgod/things/nas/state", b"{}", qos=1)
            async with asyncio.timeout(GUARD_S):
                received = await anext(aiter(bridge.messages))
                assert received.topic.value == "pushgod/things/nas/in/attr/disk"
                received = await anext(aiter(nas.messages))
                assert received.topic.value == "pushgod/things/nas/state"

        async with open_accounts(settings.mqtt, settings.data_dir) as accounts:
            await services.devices.revoke(None, accounts, "garage")
        broker.process.send_signal(signal.SIGHUP)
        await logged(broker.log, "Reloading config")
        assert not await _connects(broker, "garage", passwords["garage"])
        assert await _connects(broker, "nas", passwords["nas"])
        assert FOREIGN_USER in (directory / "passwd").read_text().splitlines()
        assert "user garage" not in (directory / "acl").read_text()
    finally:
        broker.close()
