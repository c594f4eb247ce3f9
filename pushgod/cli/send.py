"""`pushgod send`: a PushGo message over HTTP, with the channel password or a token."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from pushgod.cli.output import emit, fail
from pushgod.config import Settings

TIMEOUT_S = 30


def default_server(settings: Settings) -> str:
    if settings.server.public_base_url:
        return settings.server.public_base_url
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison, not a bind
        host = "127.0.0.1"
    return f"http://{host}:{settings.server.port}"


def send(args: argparse.Namespace, settings: Settings) -> int:
    body: dict[str, Any] = {"channel_id": args.channel, "title": args.title}
    headers = {"Content-Type": "application/json"}
    if args.password is not None:
        body["password"] = args.password
    else:
        headers["Authorization"] = f"Bearer {args.token}"
    for name in ("body", "severity", "url"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    server = (args.server or default_server(settings)).rstrip("/")
    request = urllib.request.Request(  # noqa: S310 - the user chooses the server URL
        f"{server}/message", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            reply = json.load(response)
    except urllib.error.HTTPError as error:
        try:
            reply = json.load(error)
        except ValueError:
            return fail(f"the server answered HTTP {error.code}")
    except (urllib.error.URLError, OSError) as error:
        return fail(f"cannot reach {server}: {getattr(error, 'reason', error)}")
    except ValueError:
        return fail(f"{server} did not answer with JSON; is it pushgod or PushGo?")
    if not reply.get("success"):
        if args.json:
            emit(reply, True)
            return 1
        return fail(str(reply.get("error")), reply.get("error_code"))
    emit(reply["data"], args.json)
    return 0
