"""Driving the OAuth server over real HTTP as a client and a person would, without a browser.

The browser tests (tests/browser/) do the person's part in Chromium; these helpers post
the consent form directly so the protocol's many bad-input cases run fast.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient

REDIRECT_URI = "http://127.0.0.1:9/callback"


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name} in the page"
    return html.unescape(found.group(1))


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


@dataclass
class Flow:
    """One client of one test server: registration, consent, tokens."""

    http: TestClient[Any, Any]
    client_id: str = ""
    verifier: str = ""
    challenge: str = ""
    redirect_uri: str = REDIRECT_URI

    @property
    def resource(self) -> str:
        return f"http://{self.http.host}:{self.http.port}/mcp"

    async def register(self, **metadata: Any) -> dict[str, Any]:
        body = {"client_name": "Test Assistant", "redirect_uris": [self.redirect_uri]}
        body.update(metadata)
        response = await self.http.post("/oauth/register", json=body)
        assert response.status == 201, await response.text()
        registered: dict[str, Any] = await response.json()
        self.client_id = registered["client_id"]
        return registered

    def authorize_params(self, **overrides: str) -> dict[str, str]:
        self.verifier, self.challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            "state": "st 1&x=2",
            "scope": "mcp:tools mcp:channels:manage",
            "resource": self.resource,
        }
        params.update(overrides)
        return {name: value for name, value in params.items() if value != "-"}

    async def consent(
        self, params: dict[str, str], channels: list[tuple[str, str]], action: str = "allow"
    ) -> str:
        """Open the consent page, add each (channel_id, password), then act: the Location."""
        page = await self.http.get("/oauth/authorize", params=params)
        assert page.status == 200, await page.text()
        text = await page.text()
        for channel_id, password in channels:
            added = await self.http.post(
                "/oauth/authorize",
                params=params,
                data={
                    "csrf_token": hidden(text, "csrf_token"),
                    "verified": hidden(text, "verified"),
                    "channel_id": channel_id,
                    "password": password,
                    "action": "add",
                },
            )
            text = await added.text()
            assert added.status == 200, text
        decided = await self.http.post(
            "/oauth/authorize",
            params=params,
            data={
                "csrf_token": hidden(text, "csrf_token"),
                "verified": hidden(text, "verified"),
                "action": action,
            },
            allow_redirects=False,
        )
        assert decided.status == 303, await decided.text()
        return decided.headers["Location"]

    async def code(self, channels: list[tuple[str, str]], **overrides: str) -> str:
        location = await self.consent(self.authorize_params(**overrides), channels)
        return query_of(location)["code"]

    async def exchange(self, issued: str, **overrides: str) -> tuple[int, dict[str, Any]]:
        form = {
            "grant_type": "authorization_code",
            "code": issued,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
            "resource": self.resource,
        }
        form.update(overrides)
        form = {name: value for name, value in form.items() if value != "-"}
        response = await self.http.post("/oauth/token", data=form)
        return response.status, await response.json()

    async def refresh(self, refresh_token: str, **overrides: str) -> tuple[int, dict[str, Any]]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
        }
        form.update(overrides)
        response = await self.http.post("/oauth/token", data=form)
        return response.status, await response.json()

    async def tokens(self, channels: list[tuple[str, str]]) -> dict[str, Any]:
        status, body = await self.exchange(await self.code(channels))
        assert status == 200, body
        return body

    async def tokens_with(self, channel: tuple[str, str], **overrides: str) -> dict[str, Any]:
        """Tokens for one channel, with the authorization request changed by `overrides`."""
        status, body = await self.exchange(await self.code([channel], **overrides))
        assert status == 200, body
        return body
