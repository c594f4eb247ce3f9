"""/mcp/bind/session and /mcp/revoke/session: where a person completes an in-chat bind.

The assistant got the link from `pushgo.channel.bind.start`; whoever opens it proves a
channel with its password, and the channel joins (or leaves) the assistant's grant.
"""

from __future__ import annotations

from aiohttp import web

from pushgod.http.keys import SERVICES
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.oauth import BindAction
from pushgod.oauth.forms import check_csrf
from pushgod.oauth.pages import error_page, page, password_problem, see_other, text
from pushgod.oauth.requests import read_form
from pushgod.store.bindings import BindSessionRow


def _action(request: web.Request) -> BindAction:
    return BindAction.REVOKE if request.path.startswith("/mcp/revoke/") else BindAction.BIND


def _session_problem(request: web.Request, error: PushgodError) -> web.Response:
    t = text(request)
    message = {
        ErrorCode.BIND_SESSION_COMPLETED: t.bind_completed,
        ErrorCode.BIND_SESSION_EXPIRED: t.bind_expired,
    }.get(error.code, t.bind_not_found)
    return error_page(request, message, error.status)


def _session(request: web.Request) -> BindSessionRow:
    """The open session the link names, for this page's action; raises otherwise."""
    session_id = request.query.get("bind_session_id", "")
    row = request.app[SERVICES].bindings.page(session_id)
    if row.action != _action(request):
        raise PushgodError(ErrorCode.BIND_SESSION_NOT_FOUND, "the link is for the other page")
    return row


def _form(
    request: web.Request,
    row: BindSessionRow,
    channel_id: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    t = text(request)
    revoke = row.action == BindAction.REVOKE
    return page(
        request,
        "bind.html",
        {
            "title": t.revoke_title if revoke else t.bind_title,
            "intro": t.revoke_intro if revoke else t.bind_intro,
            "submit": t.revoke_submit if revoke else t.bind_submit,
            "channel_id": channel_id,
            "action": request.raw_path,
            "error": error,
        },
        status=status,
        redirect_to=row.redirect_uri,
    )


async def show(request: web.Request) -> web.Response:
    try:
        row = _session(request)
    except PushgodError as error:
        return _session_problem(request, error)
    return _form(request, row, row.requested_channel_id or "")


async def complete(request: web.Request) -> web.Response:
    form = dict(await read_form(request))
    try:
        row = _session(request)
    except PushgodError as error:
        return _session_problem(request, error)
    channel_id = form.get("channel_id", "").strip()
    try:
        check_csrf(request, form.get("csrf_token", ""))
    except PushgodError as error:
        expired = text(request).form_expired
        return _form(request, row, channel_id, error=expired, status=error.status)
    bindings = request.app[SERVICES].bindings
    try:
        row, channel = await bindings.complete(
            request.query["bind_session_id"],
            channel_id,
            form.get("password", ""),
            request.remote or "",
        )
    except PushgodError as error:
        if error.code in (ErrorCode.BIND_SESSION_COMPLETED, ErrorCode.BIND_SESSION_EXPIRED):
            return _session_problem(request, error)
        problem = password_problem(request, error)
        return _form(request, row, channel_id, error=problem, status=error.status)
    if row.redirect_uri:
        return see_other(row.redirect_uri)
    t = text(request)
    done = t.revoke_done if row.action == BindAction.REVOKE else t.bind_done
    name = f"{channel.name} ({channel.id})"
    return page(request, "done.html", {"message": done.format(channel=name)})
