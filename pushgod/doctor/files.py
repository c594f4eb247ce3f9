"""The configuration files and the data directory: who owns them, who else may touch them.

A common breakage is a command run as root (`sudo pushgod channel create` on a new install)
that leaves root-owned files in the data directory, which the daemon's user then cannot
write; the fix printed is the `chown -R` that undoes it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pushgod.config import DROP_IN_DIR, Settings, keys
from pushgod.doctor.report import Check, failed, passed, skipped
from pushgod.store.database import DATABASE_FILE

DAEMON_USER = "pushgod"
"""The user the packaged service runs as (systemd/pushgod.service `User=`)."""
MAX_ENTRIES = 10_000
"""A data directory holds a handful of files; the walk stops after this many."""
DATABASE_FILES = (DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm")
SHOWN = 3  # problems named in one line; the rest are counted


@dataclass(frozen=True, slots=True)
class Owner:
    """The user the daemon runs as, who should own every file of the data directory."""

    uid: int
    name: str
    group: str


def daemon_owner(explicit: str | None) -> Owner:
    """`explicit`; else `pushgod` when root runs the doctor and that user exists (the
    .deb's service); else whoever runs the doctor. KeyError when `explicit` is unknown."""
    if explicit:
        entry = pwd.getpwnam(explicit)
    else:
        uid = os.geteuid()
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:  # a uid without a passwd entry (containers)
            return Owner(uid, str(uid), str(os.getegid()))
        if uid == 0:
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(DAEMON_USER)
    try:
        group = grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        group = str(entry.pw_gid)
    return Owner(entry.pw_uid, entry.pw_name, group)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def config_check(settings: Settings, owner: Owner) -> Check:
    """The settings loaded (main() got this far); files holding secrets are not public."""
    if not settings.files:
        return passed("config", "no configuration file: built-in defaults and PUSHGOD_* variables")
    files = [Path(name) for name in settings.files]
    drop_ins = files[0].parent / DROP_IN_DIR
    problems, fixes = [], []
    for file in [drop_ins, *files] if drop_ins.is_dir() else files:
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except OSError as error:
            return failed("config", f"cannot look at {file}: {error.strerror}", _as_root())
        if mode & stat.S_IWOTH:  # anyone could change the settings, or add a drop-in
            problems.append(f"{file} is writable by every user")
            fixes.append(f"run: sudo chmod o-w {file}")
        elif mode & stat.S_IROTH and file.is_file() and _holds_secret(file):
            problems.append(f"{file} holds secrets and is readable by every user")
            fixes.append(f"run: sudo chown root:{owner.group} {file} && sudo chmod 640 {file}")
    if problems:
        return failed("config", "; ".join(problems), "; ".join(fixes))
    more = f" and {len(files) - 1} drop-in file(s)" if len(files) > 1 else ""
    return passed("config", f"settings from {files[0]}{more} are valid")


def _holds_secret(file: Path) -> bool:
    try:
        with file.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return any(
        key.secret and isinstance(document.get(section), dict) and document[section].get(item.name)
        for section, item, key in keys()
    )


def data_dir_check(directory: Path, owner: Owner) -> Check:
    """The directory exists, belongs to the daemon's user, who may write it, and no one else
    may look inside (the database holds password hashes and every message)."""
    name = "data_dir"
    try:
        info = directory.stat()
    except FileNotFoundError:
        return failed(
            name,
            f"{directory} does not exist",
            "start pushgod once (it creates the directory and the database) or check "
            f"storage.data_dir; to create it: sudo install -d -o {owner.name} -g {owner.group} "
            f"-m 750 {directory}",
        )
    except OSError as error:
        return failed(name, f"cannot look at {directory}: {error.strerror}", _as_root())
    if not stat.S_ISDIR(info.st_mode):
        return failed(
            name, f"{directory} is not a directory", "set storage.data_dir to a directory"
        )
    mode = stat.S_IMODE(info.st_mode)
    problems, fixes = [], []
    if info.st_uid != owner.uid:
        problems.append(f"owned by {user_name(info.st_uid)}, not {owner.name}")
        fixes.append(_chown(directory, owner))
    modes = []
    if mode & stat.S_IWOTH:
        modes.append("writable by every user")
    elif mode & (stat.S_IROTH | stat.S_IXOTH):
        modes.append("open to every user")
    if mode & stat.S_IRWXU != stat.S_IRWXU:
        modes.append("not readable, writable and enterable by its owner")
    if modes:
        problems.append(f"{' and '.join(modes)} (mode {mode:04o})")
        fixes.append(f"run: sudo chmod 750 {directory}")
    if problems:
        return failed(name, f"{directory} is " + ", ".join(problems), "; ".join(fixes))
    return passed(name, f"{directory} is owned by {owner.name}, mode {mode:04o}")


def data_files_check(directory: Path, owner: Owner) -> Check:
    """Everything inside belongs to the daemon's user; the database files are writable by it."""
    name = "data_files"
    if not directory.is_dir():
        return skipped(name, f"not checked: {directory} is not a directory")
    foreign: list[str] = []
    public: list[str] = []
    read_only: list[str] = []
    count = 0
    try:
        for path in _entries(directory):
            count += 1
            info = path.lstat()
            shown = str(path.relative_to(directory))
            if info.st_uid != owner.uid:
                foreign.append(f"{shown} ({user_name(info.st_uid)})")
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_mode & stat.S_IWOTH:
                public.append(shown)
            database = path.parent == directory and path.name in DATABASE_FILES
            if database and not info.st_mode & stat.S_IWUSR:
                read_only.append(shown)
    except OSError as error:
        return failed(name, f"cannot look inside {directory}: {error.strerror}", _as_root())
    problems, fixes = [], []
    if foreign:
        problems.append(f"not owned by {owner.name}: {_some(foreign)}")
        fixes.append(_chown(directory, owner))
    if public:
        problems.append(f"writable by every user: {_some(public)}")
        fixes.append(f"run: sudo chmod -R o-w {directory}")
    if read_only:
        problems.append(f"not writable by their owner: {_some(read_only)}")
        fixes.append("run: sudo chmod u+w " + " ".join(str(directory / f) for f in read_only))
    if problems:
        return failed(name, f"in {directory}, " + "; ".join(problems), "; ".join(fixes))
    return passed(name, f"{count} entries in {directory}, all owned by {owner.name}")


def _entries(directory: Path) -> Iterator[Path]:
    """Every file and directory below `directory` (symlinks not followed), at most MAX_ENTRIES."""
    count = 0

    def fail(error: OSError) -> None:
        raise error

    for parent, dirs, files in os.walk(directory, onerror=fail):
        for entry in [*dirs, *files]:
            count += 1
            if count > MAX_ENTRIES:
                return
            yield Path(parent) / entry


def _some(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _chown(directory: Path, owner: Owner) -> str:
    return f"run: sudo chown -R {owner.name}:{owner.group} {directory}"


def _as_root() -> str:
    return "run the doctor as root or as the daemon's user: sudo pushgod doctor"
