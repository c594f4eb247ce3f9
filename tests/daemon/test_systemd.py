"""The service manager's side of the daemon, spoken as systemd speaks it: the watchdog,
STATUS= lines, socket activation and the journal's plain-text fallback.

The real systemd runs these in tests/packaging (nspawn); here the same protocols are
driven from a test: a NOTIFY_SOCKET of ours, WATCHDOG_USEC, a listening socket passed as
fd 3 with LISTEN_PID set to the daemon's own pid.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import urllib.request

import pytest
from broker import Broker

from .harness import DaemonFactory, free_port

# What systemd does between fork and exec: the socket moves to fd 3, and LISTEN_PID names
# the process that exec keeps. `pid` = "self" sets the daemon's own pid.
ACTIVATE = """
import os, sys
fd, pid, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
os.dup2(fd, 3)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()) if pid == "self" else pid)
os.execv(argv[0], argv)
"""


def _activate(sock: socket.socket, pid: str = "self") -> tuple[str, ...]:
    return (sys.executable, "-c", ACTIVATE, str(sock.fileno()), pid)


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - http to ourselves
        status: int = reply.status
        return status


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_the_watchdog_is_pinged_from_the_event_loop(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    daemon.spawn(environ={"WATCHDOG_USEC": "300000"})  # a ping every 0.15 s
    daemon.wait_notify("READY=1", 20.0)
    for _ in range(3):
        daemon.wait_notify("WATCHDOG=1")
    assert _get(f"{daemon.url}/healthz") == 200
    daemon.stop()
    assert daemon.wait_notify("STOPPING=1")


def test_no_watchdog_pings_for_another_process(daemon_factory: DaemonFactory) -> None:
    """WATCHDOG_PID names the process meant; a daemon started by one that was asked to
    ping must not ping on its behalf. STOPPING=1 follows READY=1 with nothing between."""
    daemon = daemon_factory()
    daemon.spawn(environ={"WATCHDOG_USEC": "2000", "WATCHDOG_PID": "1"})  # every 1 ms
    daemon.wait_notify("READY=1", 20.0)
    assert _get(f"{daemon.url}/healthz") == 200
    daemon.stop()
    daemon.wait_notify("STOPPING=1")
    assert not any("WATCHDOG=1" in message.split("\n") for message in daemon.notifications)


def test_a_socket_from_systemd_is_served_with_connections_it_queued(
    daemon_factory: DaemonFactory,
) -> None:
    """Socket activation: the kernel holds connections made before the daemon runs."""
    daemon = daemon_factory()
    with _listener() as sock:
        port = sock.getsockname()[1]
        early = socket.create_connection(("127.0.0.1", port), timeout=20)
        early.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        unused_port = free_port()
        daemon.spawn(
            port=unused_port,
            wrapper=_activate(sock),
            pass_fds=(sock.fileno(),),
        )
        ready = daemon.wait_notify("READY=1", 20.0)
    with early:
        assert early.recv(64).startswith(b"HTTP/1.1 200"), daemon.stderr()
    assert f"STATUS=listening on http://127.0.0.1:{port}" in ready.split("\n")
    assert _get(f"http://127.0.0.1:{port}/healthz") == 200
    with pytest.raises(ConnectionRefusedError):  # server.port was not bound besides
        socket.create_connection(("127.0.0.1", unused_port), timeout=5).close()
    assert "serving the socket systemd passed" in daemon.stderr()
    assert daemon.stop() == 0


def test_a_unix_socket_from_systemd_is_served_and_named_in_status(
    daemon_factory: DaemonFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """ListenStream=/run/pushgod/http.sock, for a reverse proxy on the same machine."""
    daemon = daemon_factory()
    path = tmp_path_factory.mktemp("sock") / "http.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        sock.listen(4)
        daemon.spawn(wrapper=_activate(sock), pass_fds=(sock.fileno(),))
        ready = daemon.wait_notify("READY=1", 20.0)
    assert f"STATUS=listening on unix:{path}" in ready.split("\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(20)
        client.connect(str(path))
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.recv(64).startswith(b"HTTP/1.1 200")
    assert daemon.stop() == 0


def test_a_socket_meant_for_another_process_is_left_alone(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    with _listener() as sock:
        daemon.spawn(
            wrapper=_activate(sock, pid="1"),
            pass_fds=(sock.fileno(),),
        )
        daemon.wait_notify("READY=1", 20.0)
    assert _get(f"{daemon.url}/healthz") == 200  # on server.port, as configured
    assert daemon.stop() == 0


def test_a_datagram_socket_from_systemd_is_refused_with_one_line(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as wrong:
        daemon.spawn(
            wrapper=_activate(wrong),
            pass_fds=(wrong.fileno(),),
        )
        assert daemon.wait_exit() == 1
    stderr = daemon.stderr()
    assert "Traceback" not in stderr
    assert "cannot serve the socket systemd passed: " in stderr
    assert "not a stream socket (ListenStream=)" in stderr


def test_under_the_journal_lines_carry_no_timestamp_of_their_own(
    daemon_factory: DaemonFactory,
) -> None:
    """JOURNAL_STREAM names stderr: journald stamps each line, so pushgod does not.
    (Without python3-systemd, as here, the lines stay plain text; with it, the nspawn
    test checks the fields.)"""
    daemon = daemon_factory()
    stderr_file = daemon.workdir / "serve-1.err"
    stderr_file.touch()
    status = os.stat(stderr_file)
    daemon.spawn(environ={"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})
    daemon.wait_notify("READY=1", 20.0)
    assert daemon.stop() == 0
    lines = daemon.stderr().splitlines()
    assert lines and all(line.startswith(("INFO ", "WARNING ")) for line in lines), lines


async def test_status_says_whether_the_broker_is_connected(
    daemon_factory: DaemonFactory, broker: Broker
) -> None:
    daemon = daemon_factory()
    daemon.config.write_text(
        "[mqtt]\nenabled = true\n"
        f'host = "{broker.host}"\nport = {broker.port}\n'
        f'username = "{broker.bridge_username}"\npassword = "{broker.bridge_password}"\n'
    )
    await asyncio.to_thread(daemon.start)
    address = f"listening on {daemon.url}"
    await asyncio.to_thread(daemon.wait_notify, f"STATUS={address}; MQTT broker connected")
    await broker.stop()
    await asyncio.to_thread(daemon.wait_notify, f"STATUS={address}; MQTT broker not connected")
