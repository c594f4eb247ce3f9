"""`sudo pushgod ...` on a data directory that belongs to the service user.

The .deb runs the daemon as the user `pushgod` on /var/lib/pushgod, and people type
`sudo pushgod channel create ...`. A command that opened the store as root would leave
root-owned files in the data directory (the migration lock, a new database, the
Mosquitto account files, the data-directory lock) that the daemon then cannot open, and
it would fail at its next start. SQLite itself gives the -wal, -shm and -journal files it
creates as root to the database's owner (os_unix.c, robustFchown), but our own files get
no such care. So when root runs a command on a data directory owned by another user,
the command becomes that user before it touches the directory:

* ordinary commands (`STORE_COMMANDS`, `serve` among them) for good, before dispatch;
* `restore` for good too, after it opened the backup file (which may be readable by
  root only, /root/pushgod.db);
* `backup` only while it opens the live database (`as_owner`): its destination is
  root's to write (a temporary file beside PATH, then a rename in root's directory),
  so it keeps root and switches its effective ids for that one moment.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STORE_COMMANDS = frozenset({"serve", "channel", "client", "device", "oauth", "token"})
"""Top-level commands that open the store and switch users before they run. `backup`
and `restore` switch on their own, at the moment that suits them (see above)."""


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    name: str | None  # None: the uid has no passwd entry (a bare chown 1234 /srv/pushgod)


def data_dir_owner(data_dir: Path) -> Owner | None:
    """The user to become: None unless we are root and `data_dir` exists and is another's.

    The group is the user's primary group (what systemd's `User=` gives the daemon),
    or the directory's group when the uid has no passwd entry.
    """
    if os.geteuid() != 0:
        return None
    try:
        info = os.stat(data_dir)
    except FileNotFoundError:
        return None
    if info.st_uid == 0:
        return None
    try:
        entry = pwd.getpwuid(info.st_uid)
    except KeyError:
        return Owner(info.st_uid, info.st_gid, None)
    return Owner(info.st_uid, entry.pw_gid, entry.pw_name)


def become_owner(data_dir: Path) -> Owner | None:
    """Switch to the data directory's owner for the rest of the process, when root.

    Groups first, then the gid, then the uid (after which there is no way back).
    Returns the owner switched to, None when nothing changed.
    """
    owner = data_dir_owner(data_dir)
    if owner is None:
        return None
    if owner.name is not None:
        os.initgroups(owner.name, owner.gid)
    else:
        os.setgroups([])
    os.setgid(owner.gid)  # as root: real, effective and saved ids alike
    os.setuid(owner.uid)
    if os.getresuid() != (owner.uid,) * 3 or os.getresgid() != (owner.gid,) * 3:
        raise RuntimeError(f"could not become uid {owner.uid} gid {owner.gid}")
    return owner


def for_command(command: str, data_dir: Path) -> None:
    """Become the data directory's owner when `command` is one of `STORE_COMMANDS`."""
    if command in STORE_COMMANDS:
        become_owner(data_dir)


@contextmanager
def as_owner(data_dir: Path) -> Iterator[None]:
    """Act as the data directory's owner inside the block, root again after it.

    Only the effective ids change (the real and saved uid stay 0, so root can come
    back): files created inside the block belong to the owner; descriptors opened
    inside stay usable after it.
    """
    owner = data_dir_owner(data_dir)
    if owner is None:
        yield
        return
    groups, egid = os.getgroups(), os.getegid()
    os.setgroups(os.getgrouplist(owner.name, owner.gid) if owner.name else [owner.gid])
    os.setegid(owner.gid)
    os.seteuid(owner.uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(egid)
        os.setgroups(groups)
