"""What a check found: a status, one line saying what, and for a failure or warning the fix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

NETWORK_TIMEOUT_S = 5.0
"""How long each network check may take unless `pushgod doctor --timeout` says otherwise."""


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"  # worth fixing, but pushgod works
    FAIL = "fail"  # pushgod is broken or unsafe until fixed; the exit status is 1
    SKIP = "skip"  # not applicable or not checkable here; the summary says why


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    summary: str
    fix: str = ""


def passed(name: str, summary: str) -> Check:
    return Check(name, Status.PASS, summary)


def warned(name: str, summary: str, fix: str) -> Check:
    return Check(name, Status.WARN, summary, fix)


def failed(name: str, summary: str, fix: str) -> Check:
    return Check(name, Status.FAIL, summary, fix)


def skipped(name: str, summary: str) -> Check:
    return Check(name, Status.SKIP, summary)


def reason(error: BaseException | None) -> str:
    """The OS's words ("Connection refused"), not asyncio's "Connect call failed (...)"."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return str(error)
