"""`pushgod serve` as a child process: clean environment, free port, sd_notify readiness.

The harness owns an AF_UNIX datagram socket and passes it as NOTIFY_SOCKET, so waiting
for readiness is waiting for the daemon's own `READY=1` (the systemd path, exercised for
real) and never a poll. A `Daemon` is one data directory; it can be started, signalled,
killed and started again on the same data, as an operator or systemd would.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
import pytest

READY_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 60.0
SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes on Linux, with the trailing NUL


def clean_environ() -> dict[str, str]:
    """os.environ without any PUSHGOD_* or PUSHGO_* name: the host's settings must not leak in."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PUSHGOD_", "PUSHGO_"))
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (bind to 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Run:
    """One start of the daemon: its process, port and output files."""

    process: subprocess.Popen[bytes]
    pidfd: int
    port: int
    stdout: Path
    stderr: Path


class Daemon:
    """One data directory and the `pushgod serve` processes started on it, one at a time."""

    def __init__(self, workdir: Path, notify_path: Path) -> None:
        if len(str(notify_path).encode()) > SUN_PATH_MAX:
            raise ValueError(f"{notify_path} is too long for an AF_UNIX socket address")
        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.data_dir = workdir / "data"
        # An empty config file of our own, so a host's /etc/pushgod/pushgod.toml is never read.
        self.config = workdir / "pushgod.toml"
        self.config.write_text("# pushgod test daemon: defaults plus the environment\n")
        self.notify_path = notify_path
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._notify.bind(str(notify_path))
        self.notifications: list[str] = []
        self.runs: list[Run] = []

    # -- the current run -------------------------------------------------------------

    @property
    def run(self) -> Run:
        if not self.runs:
            raise RuntimeError("the daemon was never started")
        return self.runs[-1]

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.run.process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.run.port}"

    @property
    def running(self) -> bool:
        return bool(self.runs) and self.process.poll() is None

    def stdout(self) -> str:
        return self.run.stdout.read_text(errors="replace")

    def stderr(self) -> str:
        return self.run.stderr.read_text(errors="replace")

    def environ(self) -> dict[str, str]:
        """What every pushgod process of this data directory runs with (no port, no notify)."""
        return clean_environ() | {
            "PUSHGOD_CONFIG": str(self.config),
            "PUSHGOD_STORAGE_DATA_DIR": str(self.data_dir),
        }

    # -- lifecycle -------------------------------------------------------------------

    def start(self, *args: str) -> str:
        """Run `pushgod serve ARGS` on a free port; return its stdout once it sent READY=1."""
        self.spawn(*args)
        self.wait_notify("READY=1", READY_TIMEOUT_S)
        return self.stdout()

    def spawn(
        self,
        *args: str,
        port: int | None = None,
        environ: Mapping[str, str] | None = None,
        wrapper: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ) -> None:
        """Run `pushgod serve ARGS` on `port` (default: a free one) without waiting for it.

        `environ` adds to (or overrides) the daemon's environment for this run; `wrapper`
        is a command that execs the daemon's argv (appended to it), keeping its pid.
        """
        if self.running:
            raise RuntimeError("the daemon is already running")
        self._drain_notifications()
        port = free_port() if port is None else port
        number = len(self.runs) + 1
        stdout, stderr = self.workdir / f"serve-{number}.out", self.workdir / f"serve-{number}.err"
        run_environ = self.environ() | {
            "PUSHGOD_SERVER_HOST": "127.0.0.1",
            "PUSHGOD_SERVER_PORT": str(port),
            "NOTIFY_SOCKET": str(self.notify_path),
            **(environ or {}),
        }
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "pushgod", "serve", *args],
                env=run_environ,
                pass_fds=pass_fds,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.runs.append(Run(process, os.pidfd_open(process.pid), port, stdout, stderr))

    def wait_notify(self, state: str, timeout: float = EXIT_TIMEOUT_S) -> str:
        """Wait for a datagram holding the line `state` (READY=1, STOPPING=1); return it.

        Fails at once, with the daemon's stderr, when the process exits without sending it.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"pushgod sent no {state} within {timeout:.0f} s\n{self.stderr()}")
            notify_fd = self._notify.fileno()
            readable, _, _ = select.select([notify_fd, self.run.pidfd], [], [], remaining)
            if notify_fd in readable:  # before the exit: datagrams sent before it are queued
                message = self._notify.recv(4096).decode()
                self.notifications.append(message)
                if state in message.split("\n"):
                    return message
            elif self.run.pidfd in readable:
                status = self.process.wait()
                pytest.fail(f"pushgod exited with {status} before sending {state}\n{self.stderr()}")

    def send_signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """The exit status (negative: killed by that signal); fails after `timeout`."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pushgod did not exit within {timeout:.0f} s\n{self.stderr()}")

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Signal the daemon and return its exit status."""
        self.send_signal(signum)
        return self.wait_exit()

    def close(self) -> str | None:
        """Stop what still runs (terminate, wait, kill); a problem to report, or None."""
        problem = None
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                problem = f"pushgod ignored SIGTERM for {EXIT_TIMEOUT_S:.0f} s and was killed"
                self.process.kill()
                self.process.wait()
        for run in self.runs:
            if run.pidfd >= 0:
                os.close(run.pidfd)
                run.pidfd = -1
        self._notify.close()
        return problem

    def output(self) -> str:
        """Every run's stdout and stderr, for the report of a failed test."""
        parts = []
        for number, run in enumerate(self.runs, 1):
            status = run.process.returncode
            parts.append(f"--- {self.workdir.name} run {number} (exit status {status}) stdout:")
            parts.append(run.stdout.read_text(errors="replace"))
            parts.append(f"--- {self.workdir.name} run {number} stderr:")
            parts.append(run.stderr.read_text(errors="replace"))
        return "\n".join(parts)

    def drop_notify_socket(self) -> None:
        """Close and remove the NOTIFY_SOCKET, as a supervisor that went away would."""
        self._notify.close()
        self.notify_path.unlink()

    def _drain_notifications(self) -> None:
        while True:
            try:
                self.notifications.append(self._notify.recv(4096, socket.MSG_DONTWAIT).decode())
            except BlockingIOError:
                return

    # -- the command line on the same data directory ---------------------------------

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`pushgod ARGS` as its own process on this data directory."""
        return subprocess.run(
            [sys.executable, "-m", "pushgod", *args],
            env=self.environ(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    def cli_json(self, *args: str) -> dict[str, Any]:
        """`pushgod ARGS --json`, which must succeed and print one JSON object."""
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def create_channel(self, name: str = "test channel") -> tuple[str, str]:
        """A new channel made with the CLI: (channel_id, password)."""
        data = self.cli_json("channel", "create", name)
        return data["channel_id"], data["password"]


DaemonFactory: TypeAlias = Callable[[], Daemon]
"""The `daemon_factory` fixture: a new `Daemon` on a fresh data directory, not started."""


def basic_auth(channel_id: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(channel_id, password)}


async def read_messages(
    session: aiohttp.ClientSession, url: str, channel_id: str, password: str
) -> list[dict[str, Any]]:
    """Every message of the channel through the read API, following `next_before` pages."""
    messages: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "500"}
    while True:
        async with session.get(
            f"{url}/api/v1/channels/{channel_id}/messages",
            params=params,
            headers=basic_auth(channel_id, password),
        ) as reply:
            envelope = await reply.json()
        assert reply.status == 200, envelope
        messages += envelope["data"]["messages"]
        if envelope["data"]["next_before"] is None:
            return messages
        params["before"] = str(envelope["data"]["next_before"])
