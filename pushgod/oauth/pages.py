"""Rendering the pages: templates, the page text, CSRF cookies and security headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.oauth.forms import csrf_token, set_csrf_cookie
from pushgod.oauth.text import ENGLISH, PageText


def text(request: web.Request) -> PageText:
    """The page text for this request; English until translations exist."""
    return ENGLISH


def csp_source(uri: str) -> str:
    """A Content-Security-Policy source for where a form may send the browser next."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def security_headers(redirect_to: str | None = None) -> dict[str, str]:
    # Chromium applies form-action to the redirect that follows a form post, so the
    # client's redirect URI must be allowed there too.
    form_action = "'self'" + (f" {csp_source(redirect_to)}" if redirect_to else "")
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self'; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def page(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    redirect_to: str | None = None,
) -> web.Response:
    """A page with a fresh CSRF token in `csrf_token`, and the headers every page gets."""
    token, new_cookie = csrf_token(request)
    response = aiohttp_jinja2.render_template(
        template, request, {"t": text(request), "csrf_token": token, **context}, status=status
    )
    response.headers.update(security_headers(redirect_to))
    if new_cookie is not None:
        set_csrf_cookie(request, response, new_cookie)
    return response


def error_page(request: web.Request, message: str, status: int = 400) -> web.Response:
    return page(request, "error.html", {"message": message}, status=status)


def see_other(location: str) -> web.Response:
    """After a form post, send the browser on with a GET."""
    return web.Response(status=303, headers={"Location": location, **security_headers(location)})


def password_problem(request: web.Request, error: PushgodError) -> str:
    """What a person reads when a channel id and password were refused."""
    t = text(request)
    if error.code is ErrorCode.RATE_LIMITED:
        return t.rate_limited.format(seconds=error.retry_after or 60)
    if error.code is ErrorCode.SERVER_BUSY:
        return t.busy
    if error.code in (
        ErrorCode.PASSWORD_MISMATCH,
        ErrorCode.CHANNEL_NOT_FOUND,
        ErrorCode.INVALID_CHANNEL_ID,
        ErrorCode.CHANNEL_ID_REQUIRED,
    ):
        return t.wrong_password
    return error.message
