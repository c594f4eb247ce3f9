"""The service manager's side channels: sd_notify(3), the watchdog, socket activation, journald.

sd_notify and sd_listen_fds(3) are small environment-variable protocols, spoken here
directly so they behave the same with or without systemd-python. journald's structured
fields use systemd-python's JournalHandler (Debian's python3-systemd) when it is installed
and stderr goes to the journal; otherwise logging stays plain text on stderr, which the
journal captures as well, without the fields.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

log = logging.getLogger(__name__)

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START: the first passed descriptor


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


def _for_this_process(variable: str) -> bool:
    """WATCHDOG_PID / LISTEN_PID, when set, name the process the variables are meant for."""
    pid = os.environ.get(variable)
    return pid is None or pid == str(os.getpid())


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec, as sd_watchdog_enabled(3)
    advises), or None when the service manager expects none."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0 or not _for_this_process("WATCHDOG_PID"):
        return None
    return int(usec) / 2_000_000


def listen_socket() -> socket.socket | None:
    """The listening socket systemd passed (socket activation), or None.

    Like sd_listen_fds(1), the variables are removed so that child processes do not
    take the descriptors for theirs.
    """
    count = os.environ.get("LISTEN_FDS", "")
    mine = os.environ.get("LISTEN_PID") == str(os.getpid())
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(variable, None)
    if not mine or not count.isdigit() or int(count) == 0:
        return None
    if int(count) > 1:
        log.warning("systemd passed %s sockets; pushgod serves the first only", count)
    sock = socket.socket(fileno=LISTEN_FDS_START)
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError("the socket systemd passed is not a stream socket (ListenStream=)")
    sock.set_inheritable(False)
    return sock


def journal_handler() -> logging.Handler | None:
    """A JournalHandler when stderr is the journal and python3-systemd is importable."""
    if not stderr_is_journal():
        return None
    try:
        from systemd.journal import JournalHandler  # type: ignore[import-not-found]
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="pushgod")
    return handler


def stderr_is_journal() -> bool:
    """JOURNAL_STREAM names the device and inode of the stream systemd connected; stderr
    is the journal only if it is still that stream (systemd.exec(5))."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = expected.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        status = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):  # stderr closed or replaced by a non-file
        return False
    return (status.st_dev, status.st_ino) == (int(device), int(inode))
