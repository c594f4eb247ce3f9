"""The database, read without changing it: integrity, migrations, its newest timestamps.

How the file is opened, so that nothing is created, written or deleted whoever runs the
doctor (often root, whose new files the daemon's user could not open):

* the -wal and -shm exist (the daemon runs, or stopped uncleanly): `mode=ro`. The commits
  still in the WAL are read through the -shm index like any reader does; a read-only
  connection never checkpoints, so closing it changes neither the database nor the WAL.
  (Readers write their read marks into the -shm; that file is their shared scratch space.)
* neither exists (a clean stop checkpointed everything): `mode=ro&immutable=1`. Plain
  `mode=ro` would create an empty -wal and -shm owned by the doctor's user.
* a -wal that holds commits but no -shm: `immutable=1` as well, which reads the main file
  only; building the -shm index would be a write, so the WAL's commits go unchecked and a
  warning says so.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from pushgod.doctor.report import Check, failed, passed, reason, skipped, warned
from pushgod.store.database import MIGRATION_TABLE, instance_id, known_migrations

OPEN_TIMEOUT_S = 2.0
"""How long to wait for a lock the daemon holds (a checkpoint) before giving up."""
PROGRESS_STEPS = 1_000
NEWEST = (
    ("the newest change", "SELECT max(at) FROM changes"),
    ("the newest channel update", "SELECT max(updated_at) FROM channels"),
)


@dataclass(frozen=True, slots=True)
class Inspection:
    """What one read-only pass over the database found."""

    path: Path
    check: str  # the PRAGMA that ran: quick_check or integrity_check
    problems: list[str]  # its findings; empty when it said "ok"
    applied: list[str]  # migration names recorded as applied, in order
    newest: tuple[int, str] | None  # the latest timestamp (ms) in the data and what it is
    instance: str | None  # store.instance_id
    wal_unread: bool  # a -wal with commits that could not be read without writing


def inspect(path: Path, *, thorough: bool, deadline_s: float) -> Inspection:
    """Read `path` as described above; sqlite3.Error or OSError when that fails.

    A query still running after `deadline_s` is interrupted (sqlite3.OperationalError
    "interrupted"), so a huge or slow database cannot hang the doctor: by the progress
    handler between VDBE steps, and by a timer for the b-tree walk of the integrity check,
    which runs inside a single step.
    """
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    live = wal.exists() and shm.exists()
    wal_unread = not live and wal.exists() and wal.stat().st_size > 0
    uri = f"file:{quote(str(path.absolute()))}?mode=ro" + ("" if live else "&immutable=1")
    connection = sqlite3.connect(uri, uri=True, timeout=OPEN_TIMEOUT_S)
    deadline = time.monotonic() + deadline_s
    connection.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    timer = threading.Timer(deadline_s, connection.interrupt)
    timer.start()
    try:
        check = "integrity_check" if thorough else "quick_check"
        rows = [row[0] for row in connection.execute(f"PRAGMA {check}")]
        return Inspection(
            path=path,
            check=check,
            problems=[] if rows == ["ok"] else [str(row) for row in rows],
            applied=_applied(connection),
            newest=_newest(connection),
            instance=instance_id(connection),
            wal_unread=wal_unread,
        )
    finally:
        timer.cancel()
        timer.join()  # an interrupt under way ends before the connection closes
        connection.close()


def _applied(connection: sqlite3.Connection) -> list[str]:
    try:
        rows = connection.execute(f"SELECT name FROM {MIGRATION_TABLE} ORDER BY id")  # noqa: S608
        return [str(row[0]) for row in rows]
    except sqlite3.OperationalError:  # no such table: never migrated
        return []


def _newest(connection: sqlite3.Connection) -> tuple[int, str] | None:
    found: list[tuple[int, str]] = []
    for what, sql in NEWEST:
        try:
            value = connection.execute(sql).fetchone()[0]
        except sqlite3.OperationalError:  # a table an older schema lacks
            continue
        if isinstance(value, int):
            found.append((value, what))
    try:
        rows = connection.execute(f"SELECT applied FROM {MIGRATION_TABLE}")  # noqa: S608
        for (applied,) in rows:
            # playhouse records the local time without a zone; a few hours off do not matter
            # next to the clocks this looks for (1970, or a jump back of days).
            at = int(datetime.fromisoformat(str(applied)).timestamp() * 1000)
            found.append((at, "the newest migration"))
    except (sqlite3.OperationalError, ValueError):
        pass
    return max(found) if found else None


def database_checks(
    path: Path, user: str, *, thorough: bool, deadline_s: float
) -> tuple[list[Check], Inspection | None]:
    """The `database` and `migrations` checks, and what they read (None when unreadable).

    `user` is the daemon's, named in fixes that would create files (as root, they would be
    root's)."""
    not_read = "not checked: the database could not be read"
    if not path.exists():
        return [
            failed(
                "database",
                f"there is no database at {path}",
                "start pushgod once, it creates and migrates the database "
                "(sudo systemctl start pushgod); or check storage.data_dir",
            ),
            skipped("migrations", "not checked: no database"),
        ], None
    try:
        found = inspect(path, thorough=thorough, deadline_s=deadline_s)
    except sqlite3.OperationalError as error:
        if str(error) == "interrupted":
            return [
                warned(
                    "database",
                    f"the integrity check of {path} did not finish within {deadline_s:.0f} s",
                    f"run it without a time limit: sudo -u {user} sqlite3 'file:{path}?mode=ro' "
                    "'PRAGMA integrity_check'",
                ),
                skipped("migrations", not_read),
            ], None
        # Not damage (that is a DatabaseError): no permission, a lock, an I/O error.
        return [_unreadable(path, str(error)), skipped("migrations", not_read)], None
    except sqlite3.DatabaseError as error:  # "file is not a database", "malformed"
        return [_damaged(path, str(error)), skipped("migrations", not_read)], None
    except OSError as error:
        return [_unreadable(path, reason(error)), skipped("migrations", not_read)], None
    return [_integrity(found), migrations_check(found.applied)], found


def _integrity(found: Inspection) -> Check:
    path = found.path
    if found.problems:
        more = f" (and {len(found.problems) - 1} more findings)" if len(found.problems) > 1 else ""
        return _damaged(path, found.problems[0] + more)
    if found.wal_unread:
        return warned(
            "database",
            f"{path} passed {found.check}, but {path}-wal holds commits that were not checked "
            "(there is no -shm beside it)",
            "start pushgod as its user so that SQLite recovers the WAL, then run the doctor again",
        )
    size = path.stat().st_size
    shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size // 1024} KiB"
    return passed("database", f"{path} passed {found.check} ({shown})")


def _damaged(path: Path, finding: str) -> Check:
    return failed(
        "database",
        f"{path} is damaged: {finding}",
        f"stop pushgod (sudo systemctl stop pushgod), copy {path.parent} aside, then restore "
        f"the last backup (pushgod restore FILE) or salvage what is readable: "
        f"sqlite3 {path} .recover | sqlite3 {path.parent}/recovered.db",
    )


def _unreadable(path: Path, reason: str) -> Check:
    return failed(
        "database",
        f"cannot read {path}: {reason}",
        "run the doctor as root (sudo pushgod doctor); if root cannot read it either, look "
        "for disk errors: sudo dmesg",
    )


def migrations_check(applied: list[str]) -> Check:
    """Every migration this code knows is applied, and none it does not know."""
    known = known_migrations()
    unknown = [name for name in applied if name not in known]
    pending = [name for name in known if name not in applied]
    if unknown:
        return failed(
            "migrations",
            f"the database was migrated by a newer pushgod ({', '.join(unknown)} are unknown "
            "to this one)",
            "install that newer pushgod again, or restore a backup made with this version",
        )
    if not applied:
        return failed(
            "migrations",
            "the database was never migrated: it holds no pushgod schema",
            "start pushgod, it migrates the database at start; if the file is not pushgod's, "
            "check storage.data_dir",
        )
    if pending:
        return warned(
            "migrations",
            f"{len(pending)} migration(s) of this version not applied yet: {', '.join(pending)}",
            "restart pushgod, it applies them at start: sudo systemctl restart pushgod",
        )
    return passed("migrations", f"all {len(known)} migrations applied, the last {known[-1]}")
