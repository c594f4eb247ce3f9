"""The outermost middleware: request ids, and every error rendered as the envelope.

Each failure is logged once with journald fields (REQUEST_ID, CHANNEL_ID, ERROR_CODE), so
`journalctl -u pushgod ERROR_CODE=password_mismatch` finds them; successes are not
logged (no access log: a Pi's SD card should not be written per request).
"""

from __future__ import annotations

import logging

from aiohttp import web

from pushgod.http.envelope import failure
from pushgod.http.keys import CHANNEL_ID, REQUEST_ID
from pushgod.http.routing import Handler
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import new_hex_id

log = logging.getLogger(__name__)

_FRAMEWORK_ERRORS = {
    404: PushgodError(ErrorCode.ROUTE_NOT_FOUND, "no such route"),
    405: PushgodError(ErrorCode.METHOD_NOT_ALLOWED, "this route does not take that method"),
    413: PushgodError(ErrorCode.PAYLOAD_TOO_LARGE, "the request body is larger than 32 KiB"),
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id; turn every failure into the envelope, never a bare 500."""
    request[REQUEST_ID] = new_hex_id()
    try:
        return await handler(request)
    except PushgodError as error:
        return _failure(request, error)
    except web.HTTPException as error:
        known = _FRAMEWORK_ERRORS.get(error.status)
        if known is None:
            known = PushgodError(ErrorCode.INVALID_QUERY, error.reason)
        return _failure(request, known)
    except ConnectionResetError:  # the client left mid-request: nothing to answer, no bug
        log.debug("client went away during %s %s", request.method, request.path)
        raise
    except Exception:
        log.exception(
            "request %s %s failed (request id %s)",
            request.method,
            request.rel_url.raw_path,
            request[REQUEST_ID],
            extra=_fields(request, ErrorCode.INTERNAL_ERROR),
        )
        return failure(
            PushgodError(
                ErrorCode.INTERNAL_ERROR,
                f"internal error; quote request id {request[REQUEST_ID]} when reporting it",
            )
        )


def _failure(request: web.Request, error: PushgodError) -> web.Response:
    # The message may quote the client's input, so it is left out. The path stays
    # percent-encoded (a decoded %0A would start a forged log line); the query, which may
    # hold a PushGo GET /message password, is never logged. Unknown routes are what
    # scanners cause: debug, so they do not write the journal per request.
    level = logging.DEBUG if error.code is ErrorCode.ROUTE_NOT_FOUND else logging.INFO
    log.log(
        level,
        "%s %s answered %d %s (request id %s)",
        request.method,
        request.rel_url.raw_path,
        error.status,
        error.code.value,
        request[REQUEST_ID],
        extra=_fields(request, error.code),
    )
    return failure(error)


def _fields(request: web.Request, code: ErrorCode) -> dict[str, str]:
    """Upper-case names: journald keeps only those as fields (systemd.journal sends extras)."""
    fields = {"REQUEST_ID": request[REQUEST_ID], "ERROR_CODE": code.value}
    channel_id = request.get(CHANNEL_ID)
    if channel_id is not None:
        fields["CHANNEL_ID"] = channel_id
    return fields


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the request id and safe defaults on every response, streams too."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["x-request-id"] = request_id
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
