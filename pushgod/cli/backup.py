"""`pushgod backup PATH` and `pushgod restore PATH`: the database to a file and back.

The work is in pushgod/store/backup.py and restore.py; this module parses, switches
users when run as root (see privileges.py) and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from pushgod.cli import privileges
from pushgod.cli.output import emit
from pushgod.config import Settings
from pushgod.store import backup as store_backup
from pushgod.store import restore as store_restore
from pushgod.store.database import DATABASE_FILE

BAR_WIDTH = 30


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = settings.data_dir
    bar = ProgressBar(sys.stderr)
    try:
        result = store_backup.backup(
            data_dir / DATABASE_FILE,
            Path(args.path),
            force=args.force,
            progress=bar.update,
            # As root: read the live database as its owner, write PATH as root (privileges.py).
            source_access=lambda: privileges.as_owner(data_dir),
            step_pages=args.step_pages,
        )
    finally:
        bar.end_line()  # an error message then starts on a line of its own
    bar.finish(result.pages, result.seconds)
    summary = result.summary
    if args.json:
        emit(
            {
                "backup": str(result.path),
                "bytes": summary.bytes,
                "channels": summary.channels,
                "messages": summary.messages,
                "schema": summary.schema,
                "seconds": round(result.seconds, 3),
            },
            True,
        )
        return 0
    emit(
        {
            "backup": str(result.path),
            "size": f"{size(summary.bytes)} ({summary.bytes} bytes)",
            "channels": summary.channels,
            "messages": summary.messages,
            "schema": summary.schema,
        },
        False,
    )
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = settings.data_dir
    path = Path(os.path.abspath(args.path))
    # Opened as the caller: a backup in /root stays readable after the switch below.
    with store_restore.open_backup(path) as backup:
        privileges.become_owner(data_dir)
        result = store_restore.restore(data_dir, backup)
    summary = result.summary
    if args.json:
        emit(
            {
                "restored": str(result.database),
                "from": result.source,
                "bytes": summary.bytes,
                "channels": summary.channels,
                "messages": summary.messages,
                "schema": summary.schema,
                "pending_migrations": list(summary.pending),
                "previous": None if result.kept is None else str(result.kept),
            },
            True,
        )
        return 0
    schema = summary.schema
    if summary.pending:
        schema = f"{schema} ({', '.join(summary.pending)} applied when pushgod next opens it)"
    previous = "none (there was no database)"
    if result.kept is not None:
        previous = f"{result.kept} (delete it when satisfied)"
    emit(
        {
            "restored": str(result.database),
            "from": f"{result.source} ({size(summary.bytes)})",
            "channels": summary.channels,
            "messages": summary.messages,
            "schema": schema,
            "previous": previous,
        },
        False,
    )
    return 0


class ProgressBar:
    """A bar redrawn in place on a terminal; one plain line at the end elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._shown = -1

    def update(self, done: int, total: int) -> None:
        if not self.tty or total <= 0:
            return
        percent = done * 100 // total
        if percent == self._shown:
            return
        self._shown = percent
        filled = BAR_WIDTH * done // total
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        then = ", checking it" if done == total else ""  # the integrity check takes a while
        self.stream.write(f"\rbacking up [{bar}] {percent:3d}%  {done}/{total} pages{then}")
        self.stream.flush()

    def end_line(self) -> None:
        if self._shown >= 0:
            self.stream.write("\n")
            self._shown = -1

    def finish(self, pages: int, seconds: float) -> None:
        self.stream.write(f"pushgod: backup: {pages} pages copied and checked in {seconds:.1f} s\n")
        self.stream.flush()


def size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup_help = (
        "copy the database to a file while the daemon runs and writes; the file holds "
        "everything committed before the backup began"
    )
    backup = commands.add_parser(
        "backup",
        help=backup_help,
        description=f"{backup_help}. It is written in a private directory beside PATH, "
        "checked with SQLite's integrity check, then renamed to PATH, so PATH is never "
        "half a backup. A progress bar goes to stderr when it is a terminal.",
    )
    backup.add_argument("path", metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH when it exists")
    backup.add_argument(
        "--step-pages",
        metavar="N",
        type=_positive,
        default=store_backup.STEP_PAGES,
        help=f"database pages copied per step (default {store_backup.STEP_PAGES}, 1 MiB): the "
        "progress bar's grain; every step reads the same snapshot, so the daemon's writes "
        "go on whatever N is",
    )
    backup.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    backup.set_defaults(func=cmd_backup)

    restore_help = "replace the database with a backup; the daemon must be stopped"
    restore = commands.add_parser(
        "restore",
        help=restore_help,
        description=f"{restore_help}. The backup is checked first (SQLite's integrity "
        "check, pushgod's tables, a schema this version can open); the current database "
        f"is kept beside it as {DATABASE_FILE}.before-restore-<UTC time>. Nothing changes "
        "when a check fails.",
    )
    restore.add_argument("path", metavar="PATH", help="a file written by `pushgod backup`")
    restore.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    restore.set_defaults(func=cmd_restore)
