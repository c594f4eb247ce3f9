"""Every check of `pushgod doctor`, in the order they are shown, each bounded in time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pushgod.config import Settings
from pushgod.doctor.broker import broker_checks
from pushgod.doctor.clock import clock_check, clock_sync_check
from pushgod.doctor.database import database_checks
from pushgod.doctor.files import config_check, daemon_owner, data_dir_check, data_files_check
from pushgod.doctor.public_url import public_url_check
from pushgod.doctor.report import NETWORK_TIMEOUT_S, Check, failed, skipped
from pushgod.model.errors import PushgodError
from pushgod.store.database import DATABASE_FILE

NAMES = (
    "config",
    "data_dir",
    "data_files",
    "database",
    "migrations",
    "clock",
    "clock_sync",
    "mqtt_broker",
    "mqtt_login",
    "mqtt_dynsec",
    "public_url",
)
DATABASE_DEADLINE_S = 60.0
"""How long the integrity check may read; a Raspberry Pi's SD card reads ~20 MB/s."""
CONFIG_FIX = "correct or remove it; `pushgod config example` lists every key with its meaning"


@dataclass(frozen=True, slots=True)
class Options:
    user: str | None = None  # the daemon's user; files.daemon_owner picks when None
    timeout_s: float = NETWORK_TIMEOUT_S
    thorough: bool = False  # PRAGMA integrity_check rather than quick_check


async def run(settings: Settings, options: Options) -> list[Check]:
    """Run every check against `settings`; nothing is written anywhere."""
    owner = daemon_owner(options.user)
    directory = settings.data_dir.absolute()
    checks = [
        config_check(settings, owner),
        data_dir_check(directory, owner),
        data_files_check(directory, owner),
    ]
    found_checks, found = await asyncio.to_thread(
        database_checks,
        directory / DATABASE_FILE,
        owner.name,
        thorough=options.thorough,
        deadline_s=DATABASE_DEADLINE_S,
    )
    checks += found_checks
    checks.append(clock_check(time.time_ns() // 1_000_000, found.newest if found else None))
    sync, mqtt, public = await asyncio.gather(
        asyncio.to_thread(clock_sync_check, options.timeout_s),
        broker_checks(settings, options.timeout_s),
        public_url_check(settings, found.instance if found else None, options.timeout_s),
    )
    return [*checks, sync, *mqtt, public]


def invalid_config(error: PushgodError) -> list[Check]:
    """The report when the settings do not load: that failure, and nothing else checked."""
    reason = "not checked: the configuration did not load"
    return [failed("config", error.message, CONFIG_FIX), *(skipped(n, reason) for n in NAMES[1:])]
