"""/oauth/authorize: the consent page, where a person decides what an assistant may use.

GET checks the authorization request and shows who asks, where the browser returns to
and which scopes; the person adds each channel with its password (checked there and
then, rate limited like every password check), then allows or denies. Each click posts
the form back to the same URL, so the page works without JavaScript.
"""

from __future__ import annotations

from aiohttp import web
from authlib.oauth2.rfc6749 import OAuth2Error
from markupsafe import Markup

from pushgod.http.keys import SERVICES
from pushgod.model.errors import PushgodError
from pushgod.model.oauth import MAX_GRANT_CHANNELS, redirect_host
from pushgod.oauth.forms import check_csrf, proven_channels, sign_channels
from pushgod.oauth.pages import (
    error_page,
    page,
    password_problem,
    see_other,
    text,
)
from pushgod.oauth.requests import issuer, oauth_request, read_form
from pushgod.service.oauth import Consent, with_issuer
from pushgod.service.oauth_server import Request


async def _consent(request: web.Request, oauth_req: Request) -> Consent | web.Response:
    """The checked request, or the response for a bad one: back to a known-good redirect
    URI with `error=`, or an error page when the client or its redirect URI is wrong."""
    oauth = request.app[SERVICES].oauth
    try:
        return await oauth.consent(oauth_req)
    except OAuth2Error as error:
        if error.redirect_uri:
            _, _, headers = oauth.error_response(oauth_req, error)
            return see_other(with_issuer(dict(headers)["Location"], issuer(request)))
        reason = error.description or error.error
        return error_page(request, text(request).bad_request.format(reason=reason))


def _render(
    request: web.Request,
    consent: Consent,
    channel_ids: list[str],
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    t = text(request)
    # The page text is ours and trusted; the client's name is escaped by format().
    strong = Markup('<strong id="{}">{}</strong>')
    return page(
        request,
        "consent.html",
        {
            "consent": consent,
            "intro": Markup(t.consent_intro).format(  # noqa: S704
                client=strong.format("client-name", consent.client_name)
            ),
            "redirect_note": Markup(t.consent_redirect).format(  # noqa: S704
                host=strong.format("redirect-host", redirect_host(consent.redirect_uri))
            ),
            "channels": channel_ids,
            "verified": sign_channels(request, _binding(consent), channel_ids),
            "action": request.raw_path,
            "error": error,
        },
        status=status,
        redirect_to=consent.redirect_uri,
    )


def _binding(consent: Consent) -> str:
    """What proven channels are tied to: this client and where it gets its code."""
    return f"{consent.client_id}\0{consent.redirect_uri}"


async def show(request: web.Request) -> web.Response:
    checked = await _consent(request, oauth_request(request))
    if isinstance(checked, web.Response):
        return checked
    return _render(request, checked, [])


async def decide(request: web.Request) -> web.Response:
    form = dict(await read_form(request))
    oauth_req = oauth_request(request)
    checked = await _consent(request, oauth_req)
    if isinstance(checked, web.Response):
        return checked
    try:
        check_csrf(request, form.get("csrf_token", ""))
    except PushgodError:
        return _render(request, checked, [], error=text(request).form_expired, status=403)
    services = request.app[SERVICES]
    channel_ids = proven_channels(request, _binding(checked), form.get("verified", ""))
    action = form.get("action", "")
    if action == "deny":
        return see_other(await services.oauth.decide(oauth_req, None, issuer(request)))
    if form.get("remove"):
        channel_ids = [c for c in channel_ids if c != form["remove"]]
        return _render(request, checked, channel_ids)
    entered = form.get("channel_id", "").strip()
    if entered or (action == "add" and form.get("password")):
        try:
            channel = await services.oauth.check_channel(
                entered, form.get("password", ""), request.remote or ""
            )
        except PushgodError as error:
            problem = password_problem(request, error)
            return _render(request, checked, channel_ids, error=problem, status=error.status)
        if channel.id not in channel_ids and len(channel_ids) < MAX_GRANT_CHANNELS:
            channel_ids.append(channel.id)
    if action != "allow":
        return _render(request, checked, channel_ids)
    if not channel_ids:
        missing = text(request).need_a_channel
        return _render(request, checked, channel_ids, error=missing, status=400)
    return see_other(await services.oauth.decide(oauth_req, channel_ids, issuer(request)))
