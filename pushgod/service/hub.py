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
    so a subscriber only ever sees durable changes. A subscriber of one channel is called
    only for that channel's changes, so a commit costs nothing to the other channels'
    streams.
    """

    def __init__(self) -> None:
        # Dicts as ordered sets: removal is O(1) with a thousand streams on a channel.
        self._everything: dict[Subscriber, None] = {}
        self._channels: dict[str, dict[Subscriber, None]] = {}
        self._access_watchers: list[Callable[[], None]] = []
        self.last_seq = 0

    def subscribe(
        self, subscriber: Subscriber, channel_id: str | None = None
    ) -> Callable[[], None]:
        """Add a subscriber, of one channel or of every change; returns the function that
        removes it (calling it again does nothing)."""
        if channel_id is None:
            subscribers = self._everything
        else:
            subscribers = self._channels.setdefault(channel_id, {})
        subscribers[subscriber] = None

        def unsubscribe() -> None:
            subscribers.pop(subscriber, None)
            if not subscribers and channel_id is not None:
                self._forget(channel_id, subscribers)

        return unsubscribe

    def _forget(self, channel_id: str, subscribers: dict[Subscriber, None]) -> None:
        """Drop a channel's emptied subscribers (unless a newer set took their place)."""
        if self._channels.get(channel_id) is subscribers:
            del self._channels[channel_id]

    def publish(self, changes: list[Change]) -> None:
        self.last_seq = max(self.last_seq, changes[-1].seq)
        by_channel: dict[str, list[Change]] = {}
        for change in changes:
            if change.channel_id in self._channels:
                by_channel.setdefault(change.channel_id, []).append(change)
        for channel_id, channel_changes in by_channel.items():
            self._deliver(self._channels.get(channel_id, {}), channel_changes)
        self._deliver(self._everything, changes)

    @staticmethod
    def _deliver(subscribers: dict[Subscriber, None], changes: list[Change]) -> None:
        # A copy: a subscriber may unsubscribe itself (a stream that overflows) meanwhile.
        for subscriber in list(subscribers):
            try:
                subscriber(changes)
            except Exception:
                log.exception("a change subscriber failed")

    def watch_access(self, watcher: Callable[[], None]) -> None:
        """Call `watcher` whenever credentials may have been revoked or changed."""
        self._access_watchers.append(watcher)

    def access_changed(self) -> None:
        """A token, client, password or channel changed, here or in another process."""
        for watcher in list(self._access_watchers):
            try:
                watcher()
            except Exception:
                log.exception("an access watcher failed")
