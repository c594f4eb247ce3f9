"""Who may do what: channel passwords, scoped tokens, PushGo's gateway token, OAuth grants;
default deny."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.oauth import OAuthScope, Principal
from pushgod.model.tokens import Scope, token_hash
from pushgod.service.passwords import Passwords
from pushgod.store import channels as channel_rows
from pushgod.store import oauth as oauth_rows
from pushgod.store import tokens as token_rows
from pushgod.store.channels import ChannelRow
from pushgod.store.database import Store
from pushgod.store.tokens import TokenRow

log = logging.getLogger(__name__)

TOUCH_INTERVAL_MS = 60_000
"""A token's last-used time is written at most this often, to keep reads write-free."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: its client address, a bearer token, a channel password,
    or (MCP in OAuth mode) the grant behind a verified access token."""

    address: str
    bearer: str | None = None
    password: str | None = None
    password_channel_id: str | None = None
    grant: Principal | None = None


LOCAL_OPERATOR = None
"""Passed instead of Credentials by the CLI: whoever can open the database is its admin."""


class Authenticator:
    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        clock: Callable[[], int],
        gateway_token: str,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._clock = clock
        self._gateway_token = gateway_token
        self._touched: dict[str, int] = {}
        self._touches: set[asyncio.Task[None]] = set()

    def channel(self, channel_id: str) -> ChannelRow:
        row = channel_rows.get(self._store.tables, channel_id)
        if row is None:
            raise PushgodError(ErrorCode.CHANNEL_NOT_FOUND, f"channel {channel_id} does not exist")
        return row

    async def channel_access(
        self,
        channel_id: str,
        credentials: Credentials,
        scopes: frozenset[Scope],
        *,
        sender_route: bool = False,
    ) -> ChannelRow:
        """The channel, if `credentials` may act on it with one of `scopes`.

        The channel password grants every channel scope. A token must be unexpired,
        bound to this channel (or admin) and hold one of `scopes`. `sender_route`
        applies PushGo's gateway token and its `password_required` error; as in PushGo,
        a bearer header next to a body password is ignored unless a gateway token is
        configured, in which case it must be that token or a valid pushgod token.
        An OAuth grant acts on the channels it holds, with every channel scope.
        """
        if credentials.grant is not None:
            return self._granted(channel_id, credentials.grant)
        gateway = self.is_gateway_token(credentials.bearer)
        gateway_required = sender_route and bool(self._gateway_token)
        token = None
        if not gateway and (credentials.password is None or gateway_required):
            token = self._token(credentials.bearer)
        if gateway_required and not gateway and token is None:
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED,
                "this server requires Authorization: Bearer with the gateway token",
            )
        channel = self.channel(channel_id)
        if credentials.password is not None:
            if credentials.password_channel_id not in (None, channel_id):
                raise PushgodError(
                    ErrorCode.CHANNEL_FORBIDDEN, "the credentials are for another channel"
                )
            await self._passwords.verify(
                channel_id, channel.password_hash, credentials.password, credentials.address
            )
            return channel
        if token is None:
            if sender_route:
                raise PushgodError(
                    ErrorCode.PASSWORD_REQUIRED,
                    "password is required (or send Authorization: Bearer with a pushgod token)",
                )
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED,
                "send a bearer token or HTTP Basic channel_id:password",
            )
        self._check_token_scope(token, channel_id, scopes)
        self._note_use(token)
        return channel

    def _granted(self, channel_id: str, grant: Principal) -> ChannelRow:
        if OAuthScope.TOOLS not in grant.scopes:
            raise PushgodError(
                ErrorCode.INSUFFICIENT_SCOPE, f"the access token lacks the {OAuthScope.TOOLS} scope"
            )
        # A channel the grant does not hold is not read, so that an assistant cannot probe
        # which channels exist; a deleted one leaves every grant (ON DELETE CASCADE).
        channel = oauth_rows.bound_channel(self._store.tables, grant.grant_id, channel_id)
        if channel is None:
            raise PushgodError(
                ErrorCode.CHANNEL_NOT_BOUND,
                f"channel {channel_id} is not bound to this assistant; bind it with "
                "pushgo.channel.bind.start",
            )
        return channel

    def remembered_sender(self, channel_id: str, credentials: Credentials) -> str | None:
        """For a send route: the hash its body password was verified against before.

        Only when nothing else needs checking (no gateway token is required, or it was
        sent). The write then compares this hash with the channel's inside its own
        transaction, which saves the send a read of the channel before it.
        """
        if credentials.password is None:
            return None
        if self._gateway_token and not self.is_gateway_token(credentials.bearer):
            return None
        return self._passwords.remembered(channel_id, credentials.password)

    def admin(self, credentials: Credentials | None) -> None:
        """Pass for the local operator or an admin token, else raise."""
        if credentials is LOCAL_OPERATOR:
            return
        token = self._token(credentials.bearer)
        if token is None:
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED, "send Authorization: Bearer with an admin token"
            )
        if token.scopes != Scope.ADMIN.value:
            raise PushgodError(ErrorCode.INSUFFICIENT_SCOPE, "this needs an admin token")
        self._note_use(token)

    def is_gateway_token(self, bearer: str | None) -> bool:
        """Whether `bearer` is PushGo's gateway token (never, when none is configured)."""
        return bool(self._gateway_token) and hmac.compare_digest(
            (bearer or "").encode(), self._gateway_token.encode()
        )

    def _token(self, bearer: str | None) -> TokenRow | None:
        """The live token row for a pushgod token; None when no token was sent."""
        if bearer is None or self.is_gateway_token(bearer):
            return None
        row = token_rows.by_hash(self._store.tables, token_hash(bearer))
        if row is None or (row.expires_at is not None and row.expires_at <= self._clock()):
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED, "the token is unknown, revoked or expired"
            )
        return row

    def _note_use(self, token: TokenRow) -> None:
        """Record that an accepted token was used, at most once a minute per token."""
        now = self._clock()
        if now - self._touched.get(token.id, 0) >= TOUCH_INTERVAL_MS:
            self._touched[token.id] = now
            self._touch(token.id, now)

    def _check_token_scope(
        self, token: TokenRow, channel_id: str, scopes: frozenset[Scope]
    ) -> None:
        if token.scopes == Scope.ADMIN.value:
            return
        if token.channel_id != channel_id:
            raise PushgodError(ErrorCode.CHANNEL_FORBIDDEN, "the token is for another channel")
        if not scopes & {Scope(s) for s in token.scopes.split(",")}:
            needed = " or ".join(sorted(scopes))
            raise PushgodError(ErrorCode.INSUFFICIENT_SCOPE, f"the token lacks the {needed} scope")

    def _touch(self, token_id: str, at: int) -> None:
        task = asyncio.ensure_future(
            self._store.write(lambda tx: token_rows.touch(tx, token_id, at))
        )
        self._touches.add(task)
        task.add_done_callback(self._touched_done)

    def _touched_done(self, task: asyncio.Task[None]) -> None:
        self._touches.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record a token's last use: %s", task.exception())
