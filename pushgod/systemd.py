"""sd_notify(3): tell systemd (or a test harness) about readiness and shutdown.

The protocol is one datagram on the socket named by NOTIFY_SOCKET, so no library is
needed; without NOTIFY_SOCKET every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send `state` (READY=1, STOPPING=1, ...); False when there is no one to tell.

    Like sd_notify(3), a socket that cannot be reached is reported, never raised: a
    stale NOTIFY_SOCKET inherited from elsewhere must not stop the daemon.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("could not notify the service manager at %s: %s", address, error)
        return False
    return True
