"""The system clock: not before pushgod's era or the data already stored, and kept in sync.

Nothing here asks the network for the time; synchronisation is what systemd-timesyncd (or
another NTP client) tells `timedatectl`. A Raspberry Pi has no battery-backed clock: it
boots at the last saved time, or in 1970, until NTP answers.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

from pushgod.doctor.report import Check, failed, passed, skipped, warned

ERA_START_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
"""No pushgod is older than this: an earlier clock is certainly wrong."""
TOLERANCE_MS = 60_000
"""How far behind the newest stored timestamp the clock may be (one machine: no skew)."""
NTP_FIX = "enable time synchronisation: sudo timedatectl set-ntp true"


def _when(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def clock_check(now_ms: int, newest: tuple[int, str] | None) -> Check:
    """Fails when the clock is before ERA_START_MS or behind `newest` (ms, what it is)."""
    fix = (
        "set the time: sudo timedatectl set-ntp true, or sudo date -s 'YYYY-MM-DD HH:MM:SS' "
        "(expiries, retention and token lifetimes follow the clock)"
    )
    if now_ms < ERA_START_MS:
        return failed(
            "clock",
            f"the system clock says {_when(now_ms)}, before any pushgod existed",
            fix,
        )
    if newest is not None and now_ms < newest[0] - TOLERANCE_MS:
        return failed(
            "clock",
            f"the system clock ({_when(now_ms)}) is behind {newest[1]} in the database "
            f"({_when(newest[0])}): it jumped back",
            fix,
        )
    against = f", after {newest[1]} in the database" if newest else ""
    return passed("clock", f"the system clock says {_when(now_ms)}{against}")


def clock_sync_check(timeout_s: float) -> Check:
    """Ask `timedatectl` whether NTP synchronised the clock; skipped where it cannot tell."""
    program = shutil.which("timedatectl")
    if program is None:
        return skipped("clock_sync", "not checked: there is no timedatectl (no systemd)")
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command, no user input
            [program, "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return skipped("clock_sync", f"not checked: timedatectl did not answer in {timeout_s:g} s")
    return clock_sync_from(done.returncode, done.stdout, done.stderr)


def clock_sync_from(returncode: int, stdout: str, stderr: str) -> Check:
    """The check from what `timedatectl show --property=NTPSynchronized --value` printed."""
    if returncode != 0:
        reason = (stderr.strip().splitlines() or [f"exit status {returncode}"])[0]
        return skipped("clock_sync", f"not checked: timedatectl failed: {reason}")
    answer = stdout.strip()
    if answer == "yes":
        return passed("clock_sync", "the clock is synchronised (NTP)")
    if answer == "no":
        return warned("clock_sync", "the clock is not synchronised by NTP", NTP_FIX)
    return skipped("clock_sync", f"not checked: timedatectl answered {answer!r}")
