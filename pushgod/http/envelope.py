"""PushGo's response envelope: {success, data} or {success, error, error_code}."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pushgod.model.errors import PushgodError
from pushgod.model.fields import compact_json


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response({"success": True, "data": data}, status=status, dumps=compact_json)


def failure(error: PushgodError) -> web.Response:
    response = web.json_response(
        {"success": False, "error": error.message, "error_code": error.code.value},
        status=error.status,
        dumps=compact_json,
    )
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
