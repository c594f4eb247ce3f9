"""Start-up: readiness says where the daemon listens, and a taken port is one clear line."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from .harness import Daemon, DaemonFactory


def test_ready_names_the_listening_address(daemon: Daemon) -> None:
    ready = [message for message in daemon.notifications if "READY=1" in message.split("\n")]
    assert ready == [f"READY=1\nSTATUS=listening on {daemon.url}"]


def test_port_in_use_exits_1_with_one_error_line(daemon_factory: DaemonFactory) -> None:
    """Regression: a taken port ended the daemon with an OSError traceback.

    The bind failure propagated out of `serve()`; an operator running `make run` twice
    had to dig the cause out of a stack trace. Now it is one logged line naming the
    address, exit status 1, and no READY=1.
    """
    daemon = daemon_factory()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon.spawn(port=port)
        assert daemon.wait_exit() == 1
    stderr = daemon.stderr()
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, stderr
    assert f"cannot listen on http://127.0.0.1:{port}: Address already in use" in errors[0]
    assert not any("READY=1" in message for message in daemon.notifications)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PUSHGOD_LOG_LEVEL", "loud", "log.level"),
        ("PUSHGOD_SERVER_SHUTDOWN_TIMEOUT", "soon", "server.shutdown_timeout"),
    ],
)
def test_invalid_setting_exits_2_with_one_line_naming_it(
    daemon_factory: DaemonFactory, variable: str, value: str, named: str
) -> None:
    daemon = daemon_factory()
    daemon.spawn(environ={variable: value})
    assert daemon.wait_exit() == 2
    assert daemon.stdout() == ""
    lines = daemon.stderr().splitlines()
    assert len(lines) == 1, daemon.stderr()
    assert named in lines[0]
    assert variable in lines[0]
    assert not daemon.data_dir.exists(), "the data directory was touched"


def test_unusable_data_dir_exits_1_with_one_line(daemon_factory: DaemonFactory) -> None:
    """Regression: a data directory that cannot be created ended in an OSError traceback.

    The likeliest mistake in a unit file or config (a wrong path, a file where the
    directory should be) now reads as one line naming the path, with exit status 1.
    """
    daemon = daemon_factory()
    daemon.data_dir.write_text("not a directory")
    daemon.spawn()
    assert daemon.wait_exit() == 1
    lines = daemon.stderr().splitlines()
    assert len(lines) == 1, daemon.stderr()
    assert lines[0].startswith("pushgod: ")
    assert str(daemon.data_dir) in lines[0]


@pytest.mark.parametrize(
    ("environ", "warning"),
    [
        ({}, "server.public_base_url is unset"),
        (
            {"PUSHGO_PUBLIC_BASE_URL": "http://nas.local:8750", "PUSHGOD_SERVER_HOST": "0.0.0.0"},  # noqa: S104
            "is not https while pushgod listens on 0.0.0.0",
        ),
    ],
)
def test_mcp_warns_when_the_oauth_issuer_is_unsafe(
    daemon_factory: DaemonFactory, environ: dict[str, str], warning: str
) -> None:
    daemon = daemon_factory()
    daemon.spawn(environ={"PUSHGOD_MCP_ENABLED": "true", **environ})
    daemon.wait_notify("READY=1", 20.0)
    warnings = [line for line in daemon.stderr().splitlines() if " WARNING " in line]
    assert len(warnings) == 1, daemon.stderr()
    assert warning in warnings[0]


def test_mcp_with_an_https_issuer_starts_without_warnings(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    daemon.spawn(
        environ={"PUSHGOD_MCP_ENABLED": "true", "PUSHGO_PUBLIC_BASE_URL": "https://push.example"}
    )
    daemon.wait_notify("READY=1", 20.0)
    assert " WARNING " not in daemon.stderr()


def test_a_second_daemon_on_the_same_data_refuses_with_one_line(
    daemon_factory: DaemonFactory,
) -> None:
    """Two writers on one SQLite file would both answer success; the second one stops."""
    first, second = daemon_factory(), daemon_factory()
    first.start()
    second.data_dir = first.data_dir
    second.spawn()
    assert second.wait_exit() == 1
    stderr = second.stderr()
    assert "Traceback" not in stderr
    pid = first.process.pid
    assert f"another pushgod daemon uses {first.data_dir} (pid {pid}) (data_dir_in_use)" in stderr
    assert first.running
    assert first.stop() == 0
    second.spawn()  # the lock goes with the process that held it
    second.wait_notify("READY=1", 20.0)


def test_serve_does_not_load_the_mqtt_client_when_mqtt_is_off() -> None:
    """Regression: every command, `serve` included, imported aiomqtt and paho (20 ms of a
    start on the development VM) through `pushgod doctor`'s checks, even with MQTT off.
    The checks now load when doctor runs; the bridge loads the client when MQTT is on."""
    program = """
import sys
from pushgod.cli.main import build_parser
import pushgod.daemon, pushgod.http.app
build_parser().parse_args(["serve"])
print(sorted({name.split(".")[0] for name in sys.modules} & {"aiomqtt", "paho", "mcp"}))
"""
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "[]", run.stdout
