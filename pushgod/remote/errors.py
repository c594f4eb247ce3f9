"""How the client side reports: `Stop` ends the command, `Retry` asks to reconnect later, and
`say` writes a line to stderr (stdout belongs to the command's output, or to the MCP wire)."""

from __future__ import annotations

import sys


class Stop(Exception):
    """Ends the command with a message on stderr and exit status 1."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Retry(Exception):
    """The connection failed in a way worth retrying after a while."""

    def __init__(self, message: str, wait_s: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.wait_s = wait_s


def say(message: str) -> None:
    print(f"pushgod: {message}", file=sys.stderr, flush=True)
