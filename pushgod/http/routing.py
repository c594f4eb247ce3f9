"""A route table entry: the handler plus what OpenAPI says about it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pushgod.model.fields import Schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any]
    location: str = "query"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    tag: str
    auth: Sequence[str] = ()  # security scheme names of the OpenAPI document; empty: none
    body: Schema | None = None
    required: Sequence[str] = ()
    params: Sequence[Param] = ()
    head: bool = False  # also answer HEAD (health checks); never for a GET that writes


def add_routes(app: web.Application, routes: Sequence[Route]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
        if route.head:
            app.router.add_route("HEAD", route.path, route.handler, name=f"{route.name}-head")
