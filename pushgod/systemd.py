"""sd_notify(3): tell systemd (or a test harness) about readiness and shutdown.

The protocol is one datagram on the socket named by NOTIFY_SOCKET, so no library is
needed; without NOTIFY_SOCKET every call does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True
