"""The hub: hands committed changes to in-process subscribers, in commit order."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pushgod.model.changes import Change

log = logging.getLogger(__name__)

Subscriber = Callable[[list[Change]], None]


class Hub:
    """Every side effect (streams, MQTT, MCP notifications) subscribes here.

    `publish` is called by the store on the event loop after each commit, never before,
    so a subscriber only ever sees durable changes.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.last_seq = 0

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, changes: list[Change]) -> None:
        self.last_seq = max(self.last_seq, changes[-1].seq)
        for subscriber in list(self._subscribers):
            try:
                subscriber(changes)
            except Exception:
                log.exception("a change subscriber failed")
