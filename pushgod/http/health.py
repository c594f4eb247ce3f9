"""Liveness and readiness, and the index that says where the API is described."""

from __future__ import annotations

from aiohttp import web

from pushgod import __version__
from pushgod.http.envelope import ok
from pushgod.http.keys import SERVICES
from pushgod.http.routing import Route
from pushgod.model.errors import ErrorCode, PushgodError


async def index(request: web.Request) -> web.Response:
    return ok({"name": "pushgod", "version": __version__, "openapi": "/openapi.json"})


async def healthz(request: web.Request) -> web.Response:
    """The process answers: its loop is running. `instance` says which database it serves,
    so `pushgod doctor` can tell whether the public URL reaches this pushgod."""
    return ok({"status": "ok", "instance": request.app[SERVICES].instance})


async def readyz(request: web.Request) -> web.Response:
    """The database answers a query."""
    try:
        request.app[SERVICES].ping()
    except Exception as error:
        raise PushgodError(ErrorCode.SERVER_BUSY, f"the database is not ready: {error}") from None
    return ok({"status": "ok"})


ROUTES = [
    Route(
        "GET",
        "/",
        index,
        "index",
        "Name, version and where the API is described",
        "health",
        head=True,
    ),
    Route(
        "GET",
        "/healthz",
        healthz,
        "healthz",
        "Liveness (no credentials needed)",
        "health",
        head=True,
    ),
    Route(
        "GET", "/readyz", readyz, "readyz", "Readiness: the database answers", "health", head=True
    ),
]
