"""What every service shares: settings, store, hub, authentication, password hashing, clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pushgod.config import Settings
from pushgod.service.auth import Authenticator
from pushgod.service.hub import Hub
from pushgod.service.passwords import Passwords
from pushgod.store.database import Store


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    store: Store
    hub: Hub
    auth: Authenticator
    passwords: Passwords
    clock: Callable[[], int] = now_ms
