"""All services over one store, opened and closed together."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from pushgod.config import Settings
from pushgod.service.auth import Authenticator
from pushgod.service.channels import Channels
from pushgod.service.cleanup import Cleanup
from pushgod.service.clients import Clients
from pushgod.service.context import Context, now_ms
from pushgod.service.devices import Devices
from pushgod.service.events import Events
from pushgod.service.hub import Hub
from pushgod.service.messages import Messages
from pushgod.service.passwords import Passwords
from pushgod.service.streams import Streams
from pushgod.service.things import Things
from pushgod.service.tokens import Tokens
from pushgod.store.database import Store

if TYPE_CHECKING:
    from pushgod.service.bindings import Bindings
    from pushgod.service.oauth import OAuth


class Services:
    """The service layer every adapter calls. Open it on the event loop that will use it."""

    def __init__(self, settings: Settings) -> None:
        security = settings.security
        self.settings = settings
        self.store = Store(settings.data_dir, synchronous=settings.storage.synchronous)
        self.hub = Hub()
        self.passwords = Passwords(
            security.password_threads, security.failed_logins, security.failed_login_window
        )
        auth = Authenticator(self.store, self.passwords, now_ms, settings.server.gateway_token)
        ctx = Context(settings, self.store, self.hub, auth, self.passwords)
        self.auth = auth
        self._ctx = ctx
        self.channels = Channels(ctx)
        self.tokens = Tokens(ctx)
        self.clients = Clients(ctx)
        self.messages = Messages(ctx)
        self.events = Events(ctx)
        self.things = Things(ctx)
        self.devices = Devices(ctx, self.things, self.events, self.messages)
        self.cleanup = Cleanup(ctx)
        self.streams = Streams(ctx)

    @cached_property
    def oauth(self) -> OAuth:
        """The OAuth server; authlib loads on first use, so the CLI and a daemon without
        MCP do not pay for it."""
        from pushgod.service.oauth import OAuth

        return OAuth(self._ctx)

    @cached_property
    def bindings(self) -> Bindings:
        from pushgod.service.bindings import Bindings

        return Bindings(self._ctx, self.oauth)

    def open(self) -> None:
        """Migrate the database and start the writer; changes then flow to the hub."""
        self.store.open(self.hub.publish, self.hub.access_changed)

    def ping(self) -> None:
        """Raise unless the database answers (readiness)."""
        self.store.ping()

    @property
    def instance(self) -> str | None:
        """Which database this daemon serves (store.instance_id), shown by /healthz."""
        return self.store.instance

    def close(self) -> None:
        """End open streams, commit what is queued, stop the writer and the password threads."""
        self.streams.close_all()
        self.store.close()
        self.passwords.close()
