"""`pushgod backup` and `pushgod restore` against a real daemon and real files.

The backup runs while the daemon takes writes and must hold everything acknowledged
before it began; restore refuses while the daemon runs, and every bad input gets its
error and changes nothing in the data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pushgod.config import load_settings
from pushgod.model.messages import parse_message
from pushgod.service.auth import Credentials
from pushgod.service.services import Services
from pushgod.store.backup import backup
from pushgod.store.database import DATABASE_FILE
from pushgod.store.lock import LOCK_FILE, DataDirLock

from .harness import CLI_TIMEOUT_S, Daemon, DaemonFactory, read_messages
from .mounts import Mount, mount_tmpfs

FILL = 6000  # ~1,000 pages: a backup in steps of one page spans many of the daemon's commits
WRITERS = 8
HOLD_OPEN = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT COUNT(*) FROM channels").fetchone()
print("open", flush=True)
sys.stdin.read()
"""

# -- helpers -----------------------------------------------------------------------------


async def filled(data_dir: Path, count: int) -> tuple[str, str]:
    """A channel with `count` messages, written through the service layer before the
    daemon starts (HTTP would take minutes); returns (channel_id, password)."""
    services = Services(load_settings(environ={"PUSHGOD_STORAGE_DATA_DIR": str(data_dir)}))
    services.open()
    try:
        row, password = await services.channels.create(None, "backup test")
        sender = Credentials(address="test", password=password)
        for start in range(0, count, 500):
            sends = []
            for number in range(start, min(start + 500, count)):
                body = {"channel_id": row.id, "title": f"filled {number}", "body": "x" * 200}
                _, intent = parse_message(body, 0)
                sends.append(services.messages.send(sender, intent))
            await asyncio.gather(*sends)
        return row.id, password
    finally:
        services.close()


def fill(data_dir: Path, count: int) -> tuple[str, str]:
    return asyncio.run(filled(data_dir, count))


def message_ids(database: Path) -> list[str]:
    """Message ids in commit order, read without creating anything beside the file."""
    connection = sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)
    try:
        return [row[0] for row in connection.execute("SELECT id FROM messages ORDER BY seq")]
    finally:
        connection.close()


def live_message_ids(database: Path) -> list[str]:
    """Message ids of a database a daemon may have open (a normal WAL reader)."""
    connection = sqlite3.connect(database)
    try:
        return [row[0] for row in connection.execute("SELECT id FROM messages ORDER BY seq")]
    finally:
        connection.close()


def files(directory: Path, *, lock: bool = True) -> dict[str, tuple[int, int, str, int]]:
    """Every file under `directory`: (size, mtime_ns, sha256, mode), to compare later.

    `lock=False` leaves out the lock file: a refused restore that got as far as taking
    the lock creates it or rewrites the holder's pid in it, which changes no data.
    """
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            if path.name == LOCK_FILE and not lock:
                continue
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entry = (info.st_size, info.st_mtime_ns, digest, info.st_mode)
            found[str(path.relative_to(directory))] = entry
    return found


def run(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return daemon.cli(*args)


def refused(done: subprocess.CompletedProcess[str], code: str) -> str:
    """The one error line of a command that failed with `code`."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pushgod: ") and lines[0].endswith(f" ({code})"), lines[0]
    return lines[0]


def make_backup(daemon: Daemon, path: Path) -> dict[str, Any]:
    done = run(daemon, "backup", str(path), "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def send(
    session: aiohttp.ClientSession, url: str, channel: tuple[str, str], title: str
) -> str:
    channel_id, password = channel
    body = {"channel_id": channel_id, "password": password, "title": title}
    async with session.post(f"{url}/message", json=body) as reply:
        envelope = await reply.json()
    assert reply.status == 200, envelope
    message_id: str = envelope["data"]["message_id"]
    return message_id


# -- backup under writes -----------------------------------------------------------------


async def test_a_backup_under_constant_writes_holds_what_was_acknowledged_before_it(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    """Eight clients send without pause while the backup copies one page per step.

    Without a read transaction held across the steps, every commit of the daemon would
    restart the copy, and the backup would never end (the test would time out).
    """
    daemon = daemon_factory()
    channel = await filled(daemon.data_dir, FILL)
    daemon.start()
    acknowledged: list[str] = []
    enough = asyncio.Event()
    stop = asyncio.Event()

    async def writer(session: aiohttp.ClientSession, number: int) -> None:
        count = 0
        while not stop.is_set():
            acknowledged.append(await send(session, daemon.url, channel, f"w{number}-{count}"))
            count += 1
            if len(acknowledged) >= 100:
                enough.set()

    path = tmp_path / "backups" / "pushgod.db"
    path.parent.mkdir()
    async with aiohttp.ClientSession() as session:
        writers = [asyncio.create_task(writer(session, n)) for n in range(WRITERS)]
        await asyncio.wait_for(enough.wait(), CLI_TIMEOUT_S)
        before = set(acknowledged)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pushgod",
            "backup",
            str(path),
            "--step-pages",
            "1",
            "--json",
            env=daemon.environ(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_S)
        during = len(acknowledged) - len(before)
        stop.set()
        await asyncio.gather(*writers)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)

    saved = message_ids(path)
    assert before <= set(saved), "an acknowledged message is missing from the backup"
    live = live_message_ids(daemon.data_dir / "pushgod.db")
    assert saved == live[: len(saved)], "the backup is not one snapshot of the database"
    assert len(live) > len(saved) and during > 0, "no write went on while the backup ran"
    assert result["messages"] == len(saved) >= FILL + len(before)
    assert result["channels"] == 1
    assert result["bytes"] == path.stat().st_size

    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
    assert path.read_bytes()[18:20] == b"\x01\x01", "a backup is one file, not in WAL mode"
    assert sorted(p.name for p in path.parent.iterdir()) == ["pushgod.db"]  # no leftovers
    assert "pages copied and checked" in err.decode()  # the plain line: stderr is no tty


def test_the_progress_bar_is_drawn_on_a_terminal(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 300)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pushgod",
                "backup",
                str(tmp_path / "b.db"),
                "--step-pages",
                "4",
            ],
            env=daemon.environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal's last descriptor
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(CLI_TIMEOUT_S) == 0
        assert process.stdout is not None
        process.stdout.close()
    finally:
        os.close(controller)
    text = shown.decode()
    assert "\rbacking up [" in text and "100%" in text, text
    assert text.rstrip().splitlines()[-1].startswith("pushgod: backup: ")


# -- restore -----------------------------------------------------------------------------


async def test_restore_after_stop_brings_back_the_backup_and_keeps_the_old_database(
    daemon: Daemon, tmp_path: Path
) -> None:
    channel = daemon.create_channel()
    async with aiohttp.ClientSession() as session:
        saved = {await send(session, daemon.url, channel, f"saved {n}") for n in range(5)}
        backup = tmp_path / "pushgod-backup.db"
        make_backup(daemon, backup)
        later = {await send(session, daemon.url, channel, f"later {n}") for n in range(3)}
    daemon.stop()
    stale = {"pushgod.db-wal", "pushgod.db-shm"}

    done = run(daemon, "restore", str(backup), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    database = daemon.data_dir / "pushgod.db"
    kept = Path(result["previous"])
    assert result["restored"] == str(database)
    assert result["from"] == str(backup)
    assert (result["channels"], result["messages"], result["pending_migrations"]) == (1, 5, [])
    assert kept.parent == daemon.data_dir and kept.name.startswith("pushgod.db.before-restore-")
    assert set(message_ids(kept)) == saved | later  # the replaced database, whole
    assert not stale & {p.name for p in daemon.data_dir.iterdir()}
    assert not [p for p in daemon.data_dir.iterdir() if p.name.endswith(".partial")]

    daemon.start()
    async with aiohttp.ClientSession() as session:
        messages = await read_messages(session, daemon.url, *channel)
        assert {message["message_id"] for message in messages} == saved
        # the restored database takes writes again
        await send(session, daemon.url, channel, "after the restore")


def test_restore_prints_what_it_did(daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 3)
    backup = tmp_path / "b.db"
    done = run(daemon, "backup", str(backup))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"backup:   {backup}"
    assert "messages: 3" in done.stdout.splitlines()
    done = run(daemon, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"restored: {daemon.data_dir / 'pushgod.db'}"
    assert lines[1].startswith(f"from:     {backup} (")
    assert "messages: 3" in lines
    assert lines[-1].startswith(f"previous: {daemon.data_dir}/pushgod.db.before-restore-")
    assert lines[-1].endswith("(delete it when satisfied)")


def test_restore_refuses_while_the_data_dir_lock_is_held(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    """The lock alone refuses, whoever holds it (the test here, the daemon below)."""
    daemon = daemon_factory()
    fill(daemon.data_dir, 3)
    backup = tmp_path / "b.db"
    make_backup(daemon, backup)
    with DataDirLock(daemon.data_dir, "daemon"):
        before = files(daemon.data_dir)
        line = refused(run(daemon, "restore", str(backup)), "data_dir_in_use")
        assert files(daemon.data_dir) == before
    assert f"another pushgod daemon uses {daemon.data_dir} (pid {os.getpid()})" in line
    assert "stop the daemon first" in line


async def test_restore_refuses_while_the_daemon_runs_and_a_second_daemon_too(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory()
    daemon.start()
    channel = daemon.create_channel()
    backup = tmp_path / "b.db"
    make_backup(daemon, backup)
    line = refused(run(daemon, "restore", str(backup)), "data_dir_in_use")
    assert f"another pushgod daemon uses {daemon.data_dir} (pid {daemon.process.pid})" in line

    second = daemon_factory()
    second.spawn(environ={"PUSHGOD_STORAGE_DATA_DIR": str(daemon.data_dir)})
    assert second.wait_exit() == 1
    assert f"another pushgod daemon uses {daemon.data_dir}" in second.stderr()
    async with aiohttp.ClientSession() as session:
        await send(session, daemon.url, channel, "the first daemon still serves")


# -- bad input: each refused with its code, nothing changed ------------------------------


def _missing(daemon: Daemon, path: Path) -> None:
    pass


def _directory(daemon: Daemon, path: Path) -> None:
    path.mkdir()


def _empty(daemon: Daemon, path: Path) -> None:
    path.write_bytes(b"")


def _text(daemon: Daemon, path: Path) -> None:
    path.write_text("channel_id,title\nX,hello\n" * 100)


def _corrupt(daemon: Daemon, path: Path) -> None:
    """A real backup with one page of the messages table overwritten."""
    make_backup(daemon, path)
    _corrupt_messages(path)


def _corrupt_messages(path: Path) -> None:
    connection = sqlite3.connect(path)
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    root = connection.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'messages'"
    ).fetchone()[0]
    connection.close()
    with path.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xff" * page_size)


def _fifo(daemon: Daemon, path: Path) -> None:
    """Regression: opening a FIFO for reading blocked until a writer came: a hang."""
    os.mkfifo(path)


def _foreign(daemon: Daemon, path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE recipes (name TEXT, steps TEXT)")
    connection.commit()
    connection.close()


def _newer(daemon: Daemon, path: Path) -> None:
    make_backup(daemon, path)
    connection = sqlite3.connect(path)
    connection.execute(
        "INSERT INTO schema_migration (name, applied) VALUES ('9999_from_the_future', '2030-01-01')"
    )
    connection.commit()
    connection.close()


def _with_wal(daemon: Daemon, path: Path) -> None:
    make_backup(daemon, path)
    Path(f"{path}-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 28)


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (_missing, "backup_not_found", "no such file"),
        (_directory, "not_a_database", "is not a regular file"),
        (_fifo, "not_a_database", "is not a regular file"),
        (_empty, "not_a_database", "is not an SQLite database"),
        (_text, "not_a_database", "is not an SQLite database"),
        (_corrupt, "database_corrupt", ""),
        (_foreign, "not_a_pushgod_database", "not pushgod's"),
        (_newer, "schema_too_new", "9999_from_the_future"),
        (_with_wal, "database_busy", "holds changes that are not in"),
    ],
)
def test_restore_refuses_a_bad_backup_and_changes_nothing(
    daemon_factory: DaemonFactory, tmp_path: Path, make: Any, code: str, words: str
) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 3)
    path = tmp_path / "candidate.db"
    make(daemon, path)
    before = files(daemon.data_dir)
    line = refused(run(daemon, "restore", str(path)), code)
    assert words in line
    assert files(daemon.data_dir) == before


def test_restore_refuses_while_another_process_has_the_database_open(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    """A `pushgod channel ...` running on the stopped daemon's database, say."""
    daemon = daemon_factory()
    fill(daemon.data_dir, 3)
    backup = tmp_path / "b.db"
    make_backup(daemon, backup)
    # Another process: in this one, reading the -shm file to compare it would drop the
    # connection's POSIX locks (closing any descriptor of a file drops them all).
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(daemon.data_dir / "pushgod.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        before = files(daemon.data_dir, lock=False)
        line = refused(run(daemon, "restore", str(backup)), "database_busy")
        assert "another process has" in line
        assert files(daemon.data_dir, lock=False) == before
    finally:
        holder.communicate("", timeout=CLI_TIMEOUT_S)
    done = run(daemon, "restore", str(backup))  # once it has closed the database
    assert done.returncode == 0, done.stderr


def test_backup_refuses_bad_destinations_and_changes_nothing(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 3)
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"an older backup")
    before = files(tmp_path)

    line = refused(run(daemon, "backup", str(existing)), "backup_exists")
    assert "pass --force" in line
    refused(run(daemon, "backup", str(tmp_path)), "invalid_field")
    refused(run(daemon, "backup", str(tmp_path / "no" / "such" / "dir.db")), "invalid_field")
    line = refused(run(daemon, "backup", str(daemon.data_dir / "pushgod.db")), "invalid_field")
    assert "is the live database" in line
    assert files(tmp_path) == before

    done = run(daemon, "backup", str(existing), "--force")
    assert done.returncode == 0, done.stderr
    assert message_ids(existing) == message_ids(daemon.data_dir / "pushgod.db")


def test_a_damaged_database_gives_no_backup(daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 300)
    _corrupt_messages(daemon.data_dir / "pushgod.db")
    line = refused(run(daemon, "backup", str(tmp_path / "b.db")), "database_corrupt")
    assert str(daemon.data_dir / "pushgod.db") in line
    assert list(tmp_path.glob("*b.db*")) == []


def test_backup_without_a_database_creates_nothing(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory()
    line = refused(run(daemon, "backup", str(tmp_path / "b.db")), "database_not_found")
    assert "nothing to back up" in line
    assert not daemon.data_dir.exists()
    assert not (tmp_path / "b.db").exists()


# -- a full disk, a read-only file system (real tmpfs mounts: root only) -----------------


def test_backup_on_a_full_disk_leaves_nothing_behind(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 3000)  # ~2 MiB, the mount holds 256 KiB
    with mount_tmpfs(tmp_path / "small", size="256k") as small:
        line = refused(run(daemon, "backup", str(small.path / "b.db")), "disk_full")
        assert str(small.path) in line
        assert list(small.path.iterdir()) == []


def test_backup_to_a_read_only_file_system_is_permission_denied(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory()
    fill(daemon.data_dir, 3)
    with mount_tmpfs(tmp_path / "ro", size="1m") as mount:
        mount.remount(read_only=True)
        refused(run(daemon, "backup", str(mount.path / "b.db")), "permission_denied")


def test_restore_onto_a_full_disk_changes_nothing(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    source = daemon_factory()
    fill(source.data_dir, 3000)
    backup = tmp_path / "big.db"
    make_backup(source, backup)
    with mount_tmpfs(tmp_path / "small", size="1m") as small:
        daemon = _daemon_on(daemon_factory, small)
        fill(daemon.data_dir, 3)
        before = files(daemon.data_dir, lock=False)
        line = refused(run(daemon, "restore", str(backup)), "disk_full")
        assert "no space left" in line
        assert files(daemon.data_dir, lock=False) == before


def test_restore_onto_a_read_only_data_dir_changes_nothing(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    source = daemon_factory()
    fill(source.data_dir, 3)
    backup = tmp_path / "b.db"
    make_backup(source, backup)
    with mount_tmpfs(tmp_path / "ro", size="4m") as mount:
        daemon = _daemon_on(daemon_factory, mount)
        fill(daemon.data_dir, 3)
        mount.remount(read_only=True)
        before = files(daemon.data_dir, lock=False)
        refused(run(daemon, "restore", str(backup)), "permission_denied")
        assert files(daemon.data_dir, lock=False) == before


def _daemon_on(daemon_factory: DaemonFactory, mount: Mount) -> Daemon:
    """A `Daemon` whose data directory is `mount`'s directory `data`."""
    daemon = daemon_factory()
    daemon.data_dir = mount.path / "data"
    return daemon


def test_the_copy_in_progress_sits_in_a_private_directory(tmp_path: Path) -> None:
    """Regression: the copy was made as `.NAME.XXXX.partial` right beside the target.
    SQLite opens `<copy>-wal` by name, so in a shared directory such as /tmp another user
    could plant a -wal that root's copy then read as its contents. While the copy runs,
    the target's directory holds only one new entry: a 0700 directory of ours."""
    data_dir = tmp_path / "data"
    fill(data_dir, 300)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    seen: list[tuple[str, bool, int]] = []

    def look(copied: int, total: int) -> None:
        for entry in shared.iterdir():
            status = entry.lstat()
            seen.append((entry.name, entry.is_dir(), stat.S_IMODE(status.st_mode)))

    backup(data_dir / DATABASE_FILE, shared / "pushgod.db", progress=look, step_pages=1)
    assert seen, "the progress callback never ran"
    assert {(is_dir, mode) for _, is_dir, mode in seen} == {(True, 0o700)}, seen
    assert [entry.name for entry in shared.iterdir()] == ["pushgod.db"]
