"""`pushgod doctor` on real parts: data directories made by the real store, a real Mosquitto,
the real daemon behind plain http and behind a TLS proxy; each check made to fail for real.

The doctor runs in-process as `main([...])`; tests that serve something on their own event
loop (the TLS proxy, a silent listener) run it in a thread, since main() runs its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hashlib
import ipaddress
import json
import os
import pwd
import socket
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from broker import Broker
from cryptography import x509
from integration.tls import make_cert

from pushgod.cli.main import main
from pushgod.doctor.checks import NAMES
from pushgod.doctor.clock import clock_sync_from
from pushgod.doctor.database import database_checks
from pushgod.doctor.public_url import shown
from pushgod.doctor.report import Status

from .harness import Daemon, free_port

ME = pwd.getpwuid(os.geteuid()).pw_name
NOBODY = pwd.getpwnam("nobody")
DAY_MS = 86_400_000


@dataclass
class Report:
    code: int
    out: str
    err: str

    @property
    def data(self) -> dict[str, Any]:
        """The --json report: one JSON object on one line."""
        assert self.out.count("\n") == 1, self.out
        data: dict[str, Any] = json.loads(self.out)
        return data

    def check(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(c for c in self.data["checks"] if c["name"] == name)
        return found

    def status(self, name: str) -> str:
        return str(self.check(name)["status"])


class Doctor:
    """`pushgod --config FILE doctor --user ME ARGS`, FILE written from sections by the test."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = tmp_path / "doctor.toml"
        self.data_dir = tmp_path / "data"
        self.sections: dict[str, dict[str, object]] = {"storage": {"data_dir": str(self.data_dir)}}
        self._capsys = capsys

    def set(self, section: str, **values: object) -> None:
        self.sections.setdefault(section, {}).update(values)

    def write(self) -> None:
        lines = []
        for section, values in self.sections.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        self.config.touch(mode=0o600)  # it may hold secrets; an existing file keeps its mode
        self.config.write_text("\n".join(lines) + "\n")

    def cli(self, *args: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out, err = self._capsys.readouterr()
        return code, out, err

    def create_data(self) -> None:
        """A data directory made by the real store, with a channel in it."""
        self.write()
        code, _, err = self.cli("channel", "create", "kitchen", "--json")
        assert code == 0, err

    def __call__(self, *args: str, json_output: bool = True) -> Report:
        self.write()
        extra = ["--json"] if json_output else []
        return Report(*self.cli("doctor", "--user", ME, *extra, *args))

    async def in_thread(self, *args: str) -> Report:
        return await asyncio.to_thread(self, *args)


@pytest.fixture
def doctor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host_environ_cleared: None
) -> Doctor:
    return Doctor(tmp_path, capsys)


@pytest.fixture
def healthy(doctor: Doctor) -> Doctor:
    doctor.create_data()
    return doctor


def snapshot(directory: Path) -> dict[str, tuple[int, int, str]]:
    """Every file below `directory`: (owner, mode, sha256) - to show the doctor changed nothing.

    A -shm is left out: it is the readers' shared scratch space, which every reader writes.
    """
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.endswith("-shm"):
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(directory))] = (info.st_uid, info.st_mode, digest)
    return found


# -- a healthy setup, the output ---------------------------------------------------------


def test_a_healthy_setup_passes_and_changes_nothing(healthy: Doctor) -> None:
    before = snapshot(healthy.data_dir)
    names_before = sorted(os.listdir(healthy.data_dir))
    report = healthy()
    assert report.code == 0, report.out
    data = report.data
    assert data["ok"] is True
    assert [check["name"] for check in data["checks"]] == list(NAMES)
    for name in ("config", "data_dir", "data_files", "database", "migrations", "clock"):
        assert report.status(name) == "pass", report.check(name)
    for name in ("mqtt_broker", "mqtt_login", "mqtt_dynsec"):
        assert report.check(name) == {
            "name": name,
            "status": "skip",
            "summary": "not checked: mqtt.enabled is false",
            "fix": "",
        }
    assert report.status("public_url") == "warn"  # not set
    assert report.status("clock_sync") in ("pass", "warn", "skip")  # the host's business
    assert report.err == ""
    # No -wal or -shm appeared (immutable=1 on a database without them), nothing changed.
    assert sorted(os.listdir(healthy.data_dir)) == names_before
    assert snapshot(healthy.data_dir) == before


def test_json_shape(healthy: Doctor) -> None:
    data = healthy().data
    assert set(data) == {"ok", "counts", "checks"}
    assert set(data["counts"]) == {status.value for status in Status}
    assert sum(data["counts"].values()) == len(NAMES)
    for check in data["checks"]:
        assert set(check) == {"name", "status", "summary", "fix"}
        assert check["status"] in {status.value for status in Status}
        assert check["summary"]
        # Every failure and warning says how to fix it; a pass or skip has nothing to fix.
        assert bool(check["fix"]) == (check["status"] in ("fail", "warn")), check


def test_text_output_is_one_line_per_check_with_the_fix(healthy: Doctor) -> None:
    healthy.data_dir.chmod(0o777)
    code, out, err = healthy.cli("doctor", "--user", ME)
    lines = out.splitlines()
    assert code == 1 and err == ""
    assert len(lines) == len(NAMES) + 1
    for line, name in zip(lines, NAMES, strict=False):
        status, shown_name = line.split()[:2]
        assert status in {s.value for s in Status} and shown_name == name
    data_dir = next(line for line in lines if line.split()[1] == "data_dir")
    assert data_dir.startswith("fail")
    assert data_dir.endswith(f"-> run: sudo chmod 750 {healthy.data_dir}")
    counts = healthy().data["counts"]
    assert lines[-1] == (
        f"{counts['fail']} failed, {counts['warn']} warned, {counts['pass']} passed, "
        f"{counts['skip']} skipped"
    )


def test_an_unknown_user_is_refused(healthy: Doctor) -> None:
    healthy.write()
    with pytest.raises(SystemExit) as exit_:
        healthy.cli("doctor", "--user", "no-such-user-here")
    assert exit_.value.code == 2


# -- config ----------------------------------------------------------------------------


def test_an_unknown_config_key_fails_the_config_check_cleanly(doctor: Doctor) -> None:
    doctor.set("storage", colour="blue")
    report = doctor()
    assert report.code == 1
    assert report.err == ""  # no traceback, no second message
    config = report.check("config")
    assert config["status"] == "fail"
    assert "storage.colour" in config["summary"] and "unknown key" in config["summary"]
    assert "pushgod config example" in config["fix"]
    for name in NAMES[1:]:
        assert report.status(name) == "skip"
    text = doctor(json_output=False)  # the same report as text
    assert text.out.startswith("fail  config")


def test_a_config_file_with_secrets_readable_by_everyone_fails(healthy: Doctor) -> None:
    healthy.set("mqtt", password="s3cret-broker-password")
    healthy.write()
    healthy.config.chmod(0o644)
    report = healthy()
    config = report.check("config")
    assert report.code == 1 and config["status"] == "fail"
    assert "readable by every user" in config["summary"]
    assert config["fix"].endswith(f"sudo chmod 640 {healthy.config}")
    assert "s3cret" not in report.out
    healthy.config.chmod(0o640)
    assert healthy().status("config") == "pass"


def test_config_drop_ins_are_checked_too(healthy: Doctor) -> None:
    """The .deb keeps generated secrets in conf.d/secrets.toml, root:pushgod 0640."""
    drop_ins = healthy.config.parent / "conf.d"
    drop_ins.mkdir(mode=0o750)
    secrets = drop_ins / "secrets.toml"
    secrets.write_text('[server]\ngateway_token = "drop-in-secret-token"\n')
    secrets.chmod(0o644)
    report = healthy()
    assert report.code == 1
    assert report.check("config")["summary"] == (
        f"{secrets} holds secrets and is readable by every user"
    )
    assert "drop-in-secret-token" not in report.out
    secrets.chmod(0o640)
    drop_ins.chmod(0o777)
    check = healthy().check("config")
    assert check == {
        "name": "config",
        "status": "fail",
        "summary": f"{drop_ins} is writable by every user",
        "fix": f"run: sudo chmod o-w {drop_ins}",
    }
    drop_ins.chmod(0o750)
    check = healthy().check("config")
    assert check["status"] == "pass" and "and 1 drop-in file(s)" in check["summary"]


# -- data directory ----------------------------------------------------------------------


def test_a_world_writable_data_dir_fails(healthy: Doctor) -> None:
    healthy.data_dir.chmod(0o777)
    report = healthy()
    check = report.check("data_dir")
    assert report.code == 1 and check["status"] == "fail"
    assert "writable by every user (mode 0777)" in check["summary"]
    assert check["fix"] == f"run: sudo chmod 750 {healthy.data_dir}"


def test_a_data_dir_owned_by_another_user_fails(healthy: Doctor) -> None:
    os.chown(healthy.data_dir, NOBODY.pw_uid, NOBODY.pw_gid)
    check = healthy().check("data_dir")
    assert check["status"] == "fail"
    assert check["summary"].endswith(f"is owned by nobody, not {ME}")
    group = grp.getgrgid(pwd.getpwnam(ME).pw_gid).gr_name
    assert check["fix"] == f"run: sudo chown -R {ME}:{group} {healthy.data_dir}"


def test_a_missing_data_dir_fails_and_says_how_it_is_made(doctor: Doctor) -> None:
    report = doctor()
    assert report.code == 1
    check = report.check("data_dir")
    assert check["status"] == "fail" and "does not exist" in check["summary"]
    assert f"-m 750 {doctor.data_dir}" in check["fix"]
    assert report.status("data_files") == "skip"
    assert report.status("database") == "fail"
    assert report.status("migrations") == "skip"


def test_a_database_file_its_owner_cannot_write_fails(healthy: Doctor) -> None:
    (healthy.data_dir / "pushgod.db").chmod(0o444)
    check = healthy().check("data_files")
    assert check["status"] == "fail"
    assert "not writable by their owner: pushgod.db" in check["summary"]
    assert check["fix"] == f"run: sudo chmod u+w {healthy.data_dir / 'pushgod.db'}"


# -- database ----------------------------------------------------------------------------


def _corrupt_a_page(path: Path) -> None:
    """Garbage over a b-tree page in the middle of the file (the header stays intact)."""
    size = path.stat().st_size
    page = 4096
    with path.open("r+b") as handle:
        handle.seek((size // page // 2) * page)
        handle.write(b"\xa5" * page)


def _corrupt_the_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(b"this is not sqlite at all")


@pytest.mark.parametrize("corrupt", [_corrupt_a_page, _corrupt_the_header])
def test_a_corrupted_database_fails_integrity_with_a_fix(healthy: Doctor, corrupt: Any) -> None:
    path = healthy.data_dir / "pushgod.db"
    corrupt(path)
    report = healthy()
    check = report.check("database")
    assert report.code == 1 and check["status"] == "fail"
    assert check["summary"].startswith(f"{path} is damaged: ")
    assert "pushgod restore" in check["fix"] and ".recover" in check["fix"]
    assert report.err == ""


def test_full_runs_integrity_check(healthy: Doctor) -> None:
    check = healthy("--full").check("database")
    assert check["status"] == "pass" and "integrity_check" in check["summary"]


def test_a_wal_without_its_shm_is_reported_and_left_alone(healthy: Doctor, tmp_path: Path) -> None:
    """A -wal holding commits without the -shm index (a crash, then the -shm lost): reading
    the WAL would mean writing a new -shm, so the main file alone is checked, and a warning
    says so."""
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o750)
    source = healthy.data_dir / "pushgod.db"
    with contextlib.closing(sqlite3.connect(source, isolation_level=None)) as db:
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("UPDATE channels SET name = 'in the WAL only'")
        for name in ("pushgod.db", "pushgod.db-wal"):
            (copy / name).write_bytes((healthy.data_dir / name).read_bytes())
    healthy.set("storage", data_dir=str(copy))
    before = snapshot(copy)
    check = healthy().check("database")
    assert check["status"] == "warn", check
    assert "-wal holds commits that were not checked" in check["summary"]
    assert sorted(os.listdir(copy)) == ["pushgod.db", "pushgod.db-wal"]
    assert snapshot(copy) == before


def test_an_integrity_check_past_its_deadline_is_interrupted(healthy: Doctor) -> None:
    """A database big enough for the check to take many steps, and a deadline already past."""
    path = healthy.data_dir / "pushgod.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        channel_id = db.execute("SELECT id FROM channels").fetchone()[0]
        db.executemany(
            "INSERT INTO messages (id, channel_id, created_at, data) VALUES (?, ?, 0, '{}')",
            ((f"{n:032x}", channel_id) for n in range(5_000)),
        )
    checks, found = database_checks(
        healthy.data_dir / "pushgod.db", ME, thorough=True, deadline_s=0
    )
    assert found is None
    assert checks[0].status is Status.WARN
    assert "did not finish within 0 s" in checks[0].summary
    assert checks[0].fix.startswith(f"run it without a time limit: sudo -u {ME} sqlite3")


def test_a_database_migrated_by_a_newer_pushgod_fails(healthy: Doctor) -> None:
    with contextlib.closing(sqlite3.connect(healthy.data_dir / "pushgod.db")) as db, db:
        db.execute("INSERT INTO schema_migration (name, applied) VALUES ('9999_future', '2031')")
    check = healthy().check("migrations")
    assert check["status"] == "fail" and "9999_future" in check["summary"]
    assert "newer pushgod" in check["summary"]
    assert "restore a backup" in check["fix"]


def test_an_empty_database_file_was_never_migrated(doctor: Doctor) -> None:
    doctor.data_dir.mkdir(mode=0o750)
    (doctor.data_dir / "pushgod.db").touch()
    report = doctor()
    assert report.status("database") == "pass"  # an empty file is a valid, empty database
    check = report.check("migrations")
    assert check["status"] == "fail" and "never migrated" in check["summary"]


# -- clock -------------------------------------------------------------------------------


def test_a_clock_behind_the_stored_data_fails(healthy: Doctor) -> None:
    """Data written tomorrow means the clock jumped back since (a Raspberry Pi without RTC)."""
    tomorrow = time.time_ns() // 1_000_000 + DAY_MS
    with contextlib.closing(sqlite3.connect(healthy.data_dir / "pushgod.db")) as db, db:
        db.execute("UPDATE channels SET updated_at = ?", (tomorrow,))
    check = healthy().check("clock")
    assert check["status"] == "fail"
    assert "jumped back" in check["summary"] and "newest channel update" in check["summary"]
    assert "timedatectl set-ntp true" in check["fix"]


def test_clock_sync_is_read_from_timedatectl() -> None:
    assert clock_sync_from(0, "yes\n", "").status is Status.PASS
    unsynced = clock_sync_from(0, "no\n", "")
    assert unsynced.status is Status.WARN and unsynced.fix.endswith("timedatectl set-ntp true")
    no_systemd = clock_sync_from(1, "", "System has not been booted with systemd\nmore\n")
    assert no_systemd.status is Status.SKIP
    assert (
        no_systemd.summary
        == "not checked: timedatectl failed: System has not been booted with systemd"
    )


# -- the daemon running: WAL files -------------------------------------------------------


def test_the_running_daemons_database_is_read_without_change(
    daemon: Daemon, doctor: Doctor
) -> None:
    daemon.create_channel()
    doctor.set("storage", data_dir=str(daemon.data_dir))
    assert (daemon.data_dir / "pushgod.db-wal").exists()
    before = snapshot(daemon.data_dir)
    report = doctor()
    assert report.status("database") == "pass" and report.status("data_files") == "pass"
    assert report.code == 0, report.out
    assert snapshot(daemon.data_dir) == before


def test_a_wal_file_owned_by_another_user_fails(daemon: Daemon, doctor: Doctor) -> None:
    """What a command run as root on a new install could leave behind."""
    daemon.create_channel()
    doctor.set("storage", data_dir=str(daemon.data_dir))
    os.chown(daemon.data_dir / "pushgod.db-wal", NOBODY.pw_uid, NOBODY.pw_gid)
    report = doctor()
    check = report.check("data_files")
    assert report.code == 1 and check["status"] == "fail"
    assert f"not owned by {ME}: pushgod.db-wal (nobody)" in check["summary"]
    assert check["fix"].startswith(f"run: sudo chown -R {ME}:")
    assert check["fix"].endswith(f" {daemon.data_dir}")


# -- MQTT --------------------------------------------------------------------------------


def _use_broker(doctor: Doctor, broker: Broker, **more: object) -> None:
    values: dict[str, object] = {
        "enabled": True,
        "host": broker.host,
        "port": broker.port,
        "username": broker.bridge_username,
        "password": broker.bridge_password,
    }
    doctor.set("mqtt", **(values | more))


async def test_mqtt_with_a_real_mosquitto_passes(healthy: Doctor, broker: Broker) -> None:
    _use_broker(healthy, broker)
    report = await healthy.in_thread()
    assert report.code == 0, report.out
    assert (
        report.check("mqtt_broker")["summary"] == f"{broker.host}:{broker.port} accepts connections"
    )
    assert report.status("mqtt_login") == "pass"
    assert report.status("mqtt_dynsec") == "pass"
    assert broker.bridge_password not in report.out


async def test_a_wrong_mqtt_password_fails_with_a_fix(healthy: Doctor, broker: Broker) -> None:
    _use_broker(healthy, broker, password="wrong-password-123")
    report = await healthy.in_thread()
    assert report.code == 1
    login = report.check("mqtt_login")
    assert login["status"] == "fail" and "refused 'pushgod'" in login["summary"]
    assert "mqtt.password" in login["fix"]
    assert report.status("mqtt_broker") == "pass"
    assert report.status("mqtt_dynsec") == "skip"  # the same account
    assert "wrong-password-123" not in report.out


async def test_an_unreachable_broker_fails_within_the_timeout(healthy: Doctor) -> None:
    healthy.set("mqtt", enabled=True, host="127.0.0.1", port=free_port())
    report = await healthy.in_thread("--timeout", "2")
    check = report.check("mqtt_broker")
    assert report.code == 1 and check["status"] == "fail"
    assert check["summary"].endswith("Connection refused")
    assert "systemctl start mosquitto" in check["fix"]
    assert report.status("mqtt_login") == "skip"


async def test_a_broker_that_never_answers_fails_within_the_timeout(healthy: Doctor) -> None:
    """TCP is accepted (the kernel's backlog) but no CONNACK ever comes."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        healthy.set("mqtt", enabled=True, host="127.0.0.1", port=silent.getsockname()[1])
        started = time.monotonic()
        report = await healthy.in_thread("--timeout", "1")
        elapsed = time.monotonic() - started
    check = report.check("mqtt_login")
    assert check["status"] == "fail", check
    assert "no MQTT session" in check["summary"]
    assert elapsed < 10, elapsed  # the timeout bounds it: 1 s, plus paho's thread at most 1 s


async def test_tls_against_a_plain_broker_fails(healthy: Doctor, broker: Broker) -> None:
    _use_broker(healthy, broker, tls=True)
    report = await healthy.in_thread()
    check = report.check("mqtt_broker")
    assert check["status"] == "fail" and "TLS handshake" in check["summary"]
    assert "8883" in check["fix"]


@pytest.mark.parametrize(("provisioning", "status"), [("dynsec", "fail"), ("auto", "warn")])
async def test_an_admin_account_without_dynamic_security(
    healthy: Doctor, broker: Broker, provisioning: str, status: str
) -> None:
    """Home Assistant's account logs in but may not use $CONTROL/dynamic-security/v1."""
    _use_broker(
        healthy,
        broker,
        provisioning=provisioning,
        admin_username=broker.ha_username,
        admin_password=broker.ha_password,
    )
    report = await healthy.in_thread("--timeout", "1")  # the broker never answers it
    check = report.check("mqtt_dynsec")
    assert check["status"] == status, check
    assert "'homeassistant' cannot use the dynamic security plugin" in check["summary"]
    assert "addClientRole homeassistant admin" in check["fix"]
    assert report.code == (1 if status == "fail" else 0), report.out


# -- public base URL ---------------------------------------------------------------------


def test_public_url_over_http_reaching_this_pushgod_warns(daemon: Daemon, doctor: Doctor) -> None:
    doctor.set("storage", data_dir=str(daemon.data_dir))
    doctor.set("server", public_base_url=daemon.url)
    report = doctor()
    check = report.check("public_url")
    assert check["status"] == "warn" and "answers as this pushgod" in check["summary"]
    assert "plain http" in check["summary"]
    assert check["fix"].startswith("set server.public_base_url to the https URL assistants use")
    assert report.code == 0


@contextlib.asynccontextmanager
async def tls_proxy(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """https://127.0.0.1:PORT in front of 127.0.0.1:`port`, as a reverse proxy would be;
    its self-signed certificate is trusted through SSL_CERT_FILE for the test."""
    cert = make_cert(tmp_path / "proxy", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_file, cert.key_file)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(
            pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True
        )

    server = await asyncio.start_server(forward, "127.0.0.1", 0, ssl=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_file))
    async with server:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_public_url_over_https_reaching_this_pushgod_passes(
    daemon: Daemon, doctor: Doctor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor.set("storage", data_dir=str(daemon.data_dir))
    async with tls_proxy(tmp_path, daemon.run.port, monkeypatch) as url:
        doctor.set("server", public_base_url=url)
        report = await doctor.in_thread()
    check = report.check("public_url")
    assert check["status"] == "pass", check
    assert check["summary"].startswith(f"{url} answers as this pushgod (instance ")
    assert report.code == 0, report.out


async def test_public_url_with_an_untrusted_certificate_fails(
    daemon: Daemon, doctor: Doctor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor.set("storage", data_dir=str(daemon.data_dir))
    async with tls_proxy(tmp_path, daemon.run.port, monkeypatch) as url:
        monkeypatch.delenv("SSL_CERT_FILE")  # the system's trusted certificates lack it
        doctor.set("server", public_base_url=url)
        report = await doctor.in_thread()
    check = report.check("public_url")
    assert check["status"] == "fail" and "not trusted" in check["summary"]


def test_public_url_with_nothing_listening_fails(healthy: Doctor) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    healthy.set("server", public_base_url=url)
    report = healthy()
    check = report.check("public_url")
    assert report.code == 1 and check["status"] == "fail"
    assert check["summary"] == f"nothing answers at {url}: Connection refused"
    assert f"send {url} to it" in check["fix"]


def test_public_url_reaching_another_pushgod_fails(daemon: Daemon, healthy: Doctor) -> None:
    healthy.set("server", public_base_url=daemon.url)  # its data is not healthy's
    check = healthy().check("public_url")
    assert check["status"] == "fail" and "reaches another pushgod" in check["summary"]


def test_public_url_answering_not_found_fails(daemon: Daemon, doctor: Doctor) -> None:
    doctor.set("storage", data_dir=str(daemon.data_dir))
    doctor.set("server", public_base_url=f"{daemon.url}/prefix")
    check = doctor().check("public_url")
    assert check["status"] == "fail" and check["summary"].endswith("answered HTTP 404")


def test_a_password_in_the_public_url_is_not_shown() -> None:
    assert shown("https://user:pw@push.example.net/x") == "https://push.example.net/x"
    assert shown("https://push.example.net") == "https://push.example.net"


async def test_a_password_in_the_public_url_stays_out_of_a_protocol_error(
    healthy: Doctor,
) -> None:
    """Regression: an answer that is not HTTP was reported with the error's repr, which
    carries the request's headers: the URL's user:password as a Basic credential."""

    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        healthy.set("server", public_base_url=f"http://user:s3cret@127.0.0.1:{port}")
        report = await healthy.in_thread()
    check = report.check("public_url")
    assert check["status"] == "fail", check
    assert check["summary"] == f"http://127.0.0.1:{port}/healthz failed: ClientResponseError"
    assert "s3cret" not in report.out + report.err
    assert "dXNlcjpzM2NyZXQ" not in report.out + report.err  # base64 of user:s3cret
