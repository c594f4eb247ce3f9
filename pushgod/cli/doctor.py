"""`pushgod doctor`: check an installation and print each finding with its fix."""

from __future__ import annotations

import argparse
import asyncio
import json
import pwd
from dataclasses import asdict
from typing import TYPE_CHECKING

from pushgod.doctor.files import DAEMON_USER
from pushgod.doctor.report import NETWORK_TIMEOUT_S, Check, Status

if TYPE_CHECKING:
    from pushgod.config import Settings
    from pushgod.model.errors import PushgodError

# The checks are imported when doctor runs: they pull in aiomqtt, which every other
# command, `serve` included, would otherwise load at start.

DESCRIPTION = (
    "check the configuration, the database (integrity, migrations), the data directory's "
    "owner and permissions, the clock, the MQTT broker (reachable, pushgod's login, dynamic "
    "security) and the public base URL; print one line per check with the fix for each "
    "failure. Nothing is changed. The exit status is 0 when no check failed (warnings and "
    "skipped checks do not count)."
)


def doctor(args: argparse.Namespace, settings: Settings) -> int:
    from pushgod.doctor.checks import Options, run

    options = Options(user=args.user, timeout_s=args.timeout, thorough=args.full)
    return render(asyncio.run(run(settings, options)), args.json)


def doctor_invalid_config(args: argparse.Namespace, error: PushgodError) -> int:
    """main() calls this instead of `doctor` when the settings do not load."""
    from pushgod.doctor.checks import invalid_config

    return render(invalid_config(error), args.json)


def render(checks: list[Check], as_json: bool) -> int:
    """Print the checks (one JSON object with --json); 1 when any failed, else 0."""
    counts = {status.value: sum(c.status is status for c in checks) for status in Status}
    ok = counts[Status.FAIL.value] == 0
    if as_json:
        print(json.dumps({"ok": ok, "counts": counts, "checks": [asdict(c) for c in checks]}))
        return 0 if ok else 1
    width = max(len(check.name) for check in checks)
    for check in checks:
        fix = f" -> {check.fix}" if check.fix else ""
        print(f"{check.status.value}  {check.name:<{width}}  {check.summary}{fix}")
    print(
        f"{counts['fail']} failed, {counts['warn']} warned, {counts['pass']} passed, "
        f"{counts['skip']} skipped"
    )
    return 0 if ok else 1


def _user(name: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise argparse.ArgumentTypeError(f"there is no user named {name!r}") from None
    return name


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 60, got {text!r}")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the installation and say how to fix what is wrong",
        description=DESCRIPTION,
    )
    parser.set_defaults(func=doctor, on_config_error=doctor_invalid_config)
    parser.add_argument(
        "--user",
        metavar="NAME",
        type=_user,
        help=f"the user the daemon runs as, who should own the data directory (default: "
        f"{DAEMON_USER} when run as root and that user exists, else the current user)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=NETWORK_TIMEOUT_S,
        help=f"how long each network check may take (default: {NETWORK_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="check the database with PRAGMA integrity_check instead of the quicker "
        "quick_check (which skips comparing indexes with their tables)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
