"""Boot pushgod's .deb under a real systemd: a throwaway Debian root run by systemd-nspawn.

The root comes from a cached tarball (packaging/test/make-root.sh, rebuilt when missing or
when the script changes). The probe (packaging/test/probe.py) runs in it as a oneshot unit,
installs the .deb with apt under the booted systemd, checks the service, purges the package,
writes its results and powers the container off. Needs root, like CI.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "packaging" / "test"
CACHE = Path(os.environ.get("PUSHGOD_TEST_CACHE", "/var/cache/pushgod-test"))
"""Where the root tarballs live: outside the clone, kept between runs."""
HOST_PACKAGES = ["debootstrap", "systemd-container", "zstd"]

MAKE_ROOT_TIMEOUT_S = 600
DOWNLOAD_TIMEOUT_S = 300
BOOT_TIMEOUT_S = 300  # probe.service gives up after 240 s and powers off
PROBE = "/srv/probe"  # in the root; probe.service names these paths


class SetupError(Exception):
    """The test machine cannot run the test; the message says why and what to do."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise SetupError(
            "the nspawn package test needs root (debootstrap, systemd-nspawn, apt in the"
            " test root); CI runs `make test` as root. Run it with:"
            " sudo .venv/bin/pytest tests/packaging/test_nspawn.py"
        )


def install_host_tools() -> None:
    """debootstrap, systemd-nspawn and zstd, through .ci/system-deps (apt-get, as root)."""
    done = _run([str(REPO / ".ci" / "system-deps"), *HOST_PACKAGES], timeout=600)
    if done.returncode != 0:
        raise SetupError(f".ci/system-deps {' '.join(HOST_PACKAGES)} failed:\n{done.stdout}")


def cached_root(arch: str) -> Path:
    """The root tarball for `arch` (amd64; arm64.sh makes its own, with qemu), made now if
    there is none for this make-root.sh.

    The name carries a hash of make-root.sh, so a change to the recipe makes a new root;
    older tarballs of the arch are removed then. A lock keeps two runs from building at once.
    """
    script = SCRIPTS / "make-root.sh"
    key = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    tarball = CACHE / f"bookworm-{arch}-{key}.tar.zst"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{arch}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        made = _run(["sh", str(script), arch, str(tarball)], timeout=MAKE_ROOT_TIMEOUT_S)
        if made.returncode != 0:
            raise SetupError(f"make-root.sh {arch} failed:\n{made.stdout}")
        for stale in CACHE.glob(f"bookworm-{arch}-*.tar.zst"):
            if stale != tarball:
                stale.unlink()
    return tarball


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Results:
    """What the probe wrote, and what the container printed while it ran."""

    checks: dict[str, Check]
    journal: str  # journalctl -u pushgod, before the purge
    status: str  # systemctl status pushgod, before the purge
    console: str  # the container's console: systemd's boot and the probe's PASS/FAIL lines
    download: str  # apt-get update and the download of the package's dependencies
    timings: dict[str, float]  # seconds: extract, download, boot (the probe's run)

    def report(self, names: tuple[str, ...]) -> str:
        """Why `names` did not all pass: their details, the journal, the console's end."""
        lines = []
        for name in names:
            check = self.checks.get(name)
            if check is None:
                lines.append(f"MISSING {name}: the probe never got there")
            else:
                lines.append(f"{'PASS' if check.ok else 'FAIL'} {name}: {check.detail}")
        lines += ["", "--- all checks:"]
        for check in self.checks.values():  # the details of other failures too
            lines.append(f"PASS {check.name}" if check.ok else f"FAIL {check.name}: {check.detail}")
        lines += ["", "--- systemctl status pushgod:", self.status]
        lines += ["--- journalctl -u pushgod:", self.journal]
        lines += ["--- console (end):", *self.console.splitlines()[-80:]]
        return "\n".join(lines)


def boot_and_probe(deb: Path, tarball: Path) -> Results:
    """Extract a fresh root, fetch the .deb's dependencies, boot it with the probe, read back."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    with _extracted(tarball) as root:
        timings["extract"] = time.monotonic() - started
        _stage_probe(root, deb)
        # The booted container has no network (--private-network: its port 8750 and
        # mosquitto's 1883 stay its own), so apt fetches the Depends and Recommends first;
        # the install itself runs under systemd, as a user's `apt install ./pushgod.deb`.
        # --console=read-only: systemd's and the probe's console lines come back to us.
        script = f"apt-get -q update && apt-get -q install -y --download-only {PROBE}/pushgod.deb"
        started = time.monotonic()
        download = _nspawn(root, ["--as-pid2", "/bin/sh", "-c", script], DOWNLOAD_TIMEOUT_S)
        timings["download"] = time.monotonic() - started
        if download.returncode != 0:
            raise SetupError(f"apt could not fetch pushgod's dependencies:\n{download.stdout}")
        boot = ["-b", "--console=read-only", "--private-network"]
        started = time.monotonic()
        console = _plain(_nspawn(root, boot, BOOT_TIMEOUT_S).stdout)
        timings["boot"] = time.monotonic() - started
        results = root / PROBE.lstrip("/") / "results.json"
        return _read_results(results, console, download.stdout, timings)


def _stage_probe(root: Path, deb: Path) -> None:
    probe = root / PROBE.lstrip("/")
    probe.mkdir(parents=True)
    shutil.copy(deb, probe / "pushgod.deb")
    shutil.copy(SCRIPTS / "probe.py", probe / "probe.py")
    probe.chmod(0o755)  # apt's _apt user reads the .deb
    units = root / "etc" / "systemd" / "system"
    shutil.copy(SCRIPTS / "probe.service", units / "probe.service")
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "probe.service").symlink_to("/etc/systemd/system/probe.service")
    drop_in = units / "pushgod.service.d"  # WatchdogSec=3s for this test only; see the file
    drop_in.mkdir()
    shutil.copy(SCRIPTS / "watchdog.conf", drop_in / "watchdog.conf")


def _plain(console: str) -> str:
    """The console without its colours and the blank lines the terminal's CR LF leave."""
    without_colours = re.sub(r"\x1b\[[0-9;]*m", "", console)
    return "\n".join(line for line in without_colours.splitlines() if line.strip())


def _read_results(path: Path, console: str, download: str, timings: dict[str, float]) -> Results:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        document = {"checks": [{"name": "probe", "ok": False, "detail": f"no results: {error}"}]}
    checks = {
        item["name"]: Check(item["name"], item["ok"], item["detail"]) for item in document["checks"]
    }
    journal, status = document.get("journal", ""), document.get("status", "")
    return Results(checks, journal, status, console, download, timings)


def _nspawn(root: Path, arguments: list[str], timeout_s: int) -> subprocess.CompletedProcess[str]:
    # Without systemd as the host's PID 1 there is no bus to register a machine or a scope
    # on: the container stays in our own cgroup (packaging.md §3). Under a host systemd the
    # defaults apply, as --keep-unit is refused from a login session.
    host = [] if Path("/run/systemd/system").exists() else ["--keep-unit"]
    command = ["systemd-nspawn", "-q", "-D", str(root), "--register=no", *host, *arguments]
    return _run(command, timeout_s)


@contextmanager
def _extracted(tarball: Path) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="nspawn-", dir=CACHE))
    root = work / "root"
    root.mkdir()
    try:
        extracted = _run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(root)], timeout=300)
        if extracted.returncode != 0:
            raise SetupError(f"could not extract {tarball}:\n{extracted.stdout}")
        yield root
    finally:
        _remove(work)


def _remove(work: Path) -> None:
    """rm -rf that cannot reach a host directory through a mount left in the root."""
    mounts = _run(["findmnt", "-rn", "-o", "TARGET"], timeout=30).stdout.splitlines()
    for target in sorted((m for m in mounts if m.startswith(f"{work}/")), reverse=True):
        _run(["umount", "-l", target], timeout=30)
    _run(["rm", "-rf", "--one-file-system", str(work)], timeout=120)


def _run(command: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    """stdout and stderr together; a command that outlives `timeout` is killed and fails.

    timeout(1) leads its own process group and signals all of it (debootstrap's children,
    nspawn's container), where subprocess's timeout would kill the direct child only. The
    group is killed as well when we are interrupted (Ctrl-C) or timeout(1) itself hangs.
    """
    guarded = ["timeout", "--kill-after=10", str(timeout), *command]
    with subprocess.Popen(
        guarded, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout + 30)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise
    if process.returncode in {124, 137}:  # timeout(1): TERM, or KILL 10 s later
        output += f"\n[{command[0]} stopped after {timeout} s]"
    return subprocess.CompletedProcess(command, process.returncode, output)
