"""Starting and stopping the benchmark's server processes, and reading their CPU time.

Every server is a child process that announces readiness the systemd way: one datagram
`READY=1` (with `STATUS=listening on http://HOST:PORT`) on the unix datagram socket named
by NOTIFY_SOCKET. We own that socket, so readiness is an event, never a sleep.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_ADDRESS = re.compile(r"STATUS=listening on (http://[^\s]+)")


class BenchError(RuntimeError):
    """A server did not start, stop or answer as it should."""


def clean_environ(**extra: str) -> dict[str, str]:
    """os.environ without any PUSHGOD_* or PUSHGO_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSHGOD_", "PUSHGO_"))}
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads, from /proc."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # After "pid (comm) " comes field 3 of proc(5) (state); utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def disk_write_bytes(pid: int) -> int:
    """Bytes a process caused to be written to storage so far (write_bytes of /proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "write_bytes":
            return int(value)
    return 0


def system_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all CPUs, not idle), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


@dataclass
class Server:
    """A child process that said READY=1, and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    notify: socket.socket
    statuses: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> int:
        """SIGTERM, wait for a clean exit (SIGKILL after a timeout); returns the exit status.

        The notify socket stays open until the child has gone: it sends STOPPING=1 on
        its way out, and that must find someone listening.
        """
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT_S)
                    raise BenchError(
                        f"{self.name} did not stop within {STOP_TIMEOUT_S:.0f} s; killed\n"
                        + self.log_tail()
                    ) from None
            return self.process.returncode
        finally:
            self.notify.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_server(
    name: str,
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    *,
    expected_url: str | None = None,
) -> Server:
    """Start `argv` with NOTIFY_SOCKET pointing at a socket we own; return once it is READY.

    The URL comes from the STATUS line; `expected_url` is used when the child sends none.
    """
    socket_path = workdir / f"{name}.notify"
    socket_path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    notify.bind(str(socket_path))
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            env={**env, "NOTIFY_SOCKET": str(socket_path)},
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, expected_url or "", log_path, notify)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{name} sent no READY=1 within {READY_TIMEOUT_S:.0f} s")
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited with status {process.returncode} before READY=1\n"
                    + server.log_tail()
                )
            readable, _, _ = select.select([notify], [], [], min(left, 0.2))
            if not readable:
                continue
            message = notify.recv(4096).decode(errors="replace")
            server.statuses.append(message)
            match = _ADDRESS.search(message)
            if match:
                server.url = match.group(1)
            if "READY=1" in message.split("\n"):
                break
        if not server.url:
            raise BenchError(f"{name} said READY=1 but not where it listens")
        return server
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
        notify.close()
        raise


def memory_bytes(pid: int, name: str = "VmRSS") -> int:
    """A memory figure of a process from /proc/PID/status: VmRSS (resident now), VmHWM
    (the resident peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0]) * 1024  # "123456 kB"
    raise BenchError(f"no {name} in /proc/{pid}/status")
