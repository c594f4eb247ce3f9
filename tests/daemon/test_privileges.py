"""`sudo pushgod ...` on a data directory of the service user (pushgod/cli/privileges.py).

The CLI runs as root for real here, on a data directory owned by `nobody`, as the .deb has
it with the user `pushgod` and /var/lib/pushgod. No file of root may appear in it, and
the service user must still be able to open everything afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pushgod as pushgod_package
from pushgod.cli.main import main
from pushgod.cli.privileges import as_owner
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store import database

from .harness import CLI_TIMEOUT_S, clean_environ

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching to the data directory's owner needs root"
)


@pytest.fixture
def service_user() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.fixture
def place(service_user: pwd.struct_passwd) -> Iterator[Path]:
    """A directory everyone may enter (pytest's tmp_path is root's, mode 0700), holding
    `data` owned by the service user (0750), a config file naming it, and `code`: a copy
    of the pushgod package, which the service user can read wherever this checkout is
    (a clone in a 0700 directory, say), as it can read /opt/pushgod."""
    with tempfile.TemporaryDirectory(prefix="pushgod-privileges-") as name:
        base = Path(name)
        base.chmod(0o755)
        shutil.copytree(
            Path(pushgod_package.__file__).parent,
            base / "code" / "pushgod",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        data = base / "data"
        data.mkdir(mode=0o750)
        os.chown(data, service_user.pw_uid, service_user.pw_gid)
        (base / "pushgod.toml").write_text(f"[storage]\ndata_dir = {json.dumps(str(data))}\n")
        yield base


def pushgod(place: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pushgod ARGS` as its own process, as root, on `place`'s data directory."""
    environ = clean_environ() | {
        "PUSHGOD_CONFIG": str(place / "pushgod.toml"),
        "PYTHONPATH": str(place / "code"),
    }
    return subprocess.run(
        [sys.executable, "-m", "pushgod", *args],
        env=environ,
        cwd=place,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def owners(directory: Path) -> dict[str, int]:
    return {str(path.relative_to(directory)): path.lstat().st_uid for path in directory.rglob("*")}


def as_user(user: pwd.struct_passwd, place: Path, *args: str) -> tuple[int, str]:
    """`main(ARGS)` in a forked child that became `user` first: what the daemon (or the
    service user's own commands) would meet. A fork, because the interpreter may live
    where that user cannot run it (a pyenv under /root)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read)
            # The modules are this checkout's, loaded already; the migrations are read
            # from files, so from the copy the user can read.
            database.MIGRATIONS = place / "code" / "pushgod" / "store" / "migrations"
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = main(["--config", str(place / "pushgod.toml"), *args])
            os.write(write, out.getvalue().encode())
        except BaseException as error:
            os.write(write, repr(error).encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.usefixtures("host_environ_cleared")
def test_root_commands_leave_only_the_service_users_files(
    place: Path, service_user: pwd.struct_passwd
) -> None:
    data = place / "data"
    created = pushgod(place, "channel", "create", "from root", "--json")
    assert created.returncode == 0, created.stderr
    channel_id = json.loads(created.stdout)["channel_id"]
    token = pushgod(place, "token", "create", "--channel", channel_id, "--scope", "publish")
    assert token.returncode == 0, token.stderr

    assert owners(data), "the commands wrote nothing?"
    assert set(owners(data).values()) == {service_user.pw_uid}, owners(data)
    # The migration lock and the database, made by root's command, open as the service user.
    code, output = as_user(service_user, place, "channel", "list", "--json")
    assert code == 0, output
    assert [row["channel_id"] for row in json.loads(output)["channels"]] == [channel_id]


def test_root_backs_up_into_its_own_directory_and_restores_from_it(
    place: Path, service_user: pwd.struct_passwd
) -> None:
    data = place / "data"
    created = pushgod(place, "channel", "create", "kept", "--json")
    assert created.returncode == 0, created.stderr
    private = place / "root-only"
    private.mkdir(mode=0o700)  # like /root: the service user cannot even look inside
    backup = private / "pushgod.db"

    done = pushgod(place, "backup", str(backup))
    assert done.returncode == 0, done.stderr
    assert backup.stat().st_uid == 0 and list(private.iterdir()) == [backup]
    assert set(owners(data).values()) == {service_user.pw_uid}, owners(data)

    assert pushgod(place, "channel", "create", "after the backup").returncode == 0
    done = pushgod(place, "restore", str(backup), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["channels"] == 1
    assert Path(result["previous"]).parent == data
    assert set(owners(data).values()) == {service_user.pw_uid}, owners(data)
    assert backup.stat().st_uid == 0

    listing = pushgod(place, "channel", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert [row["name"] for row in json.loads(listing.stdout)["channels"]] == ["kept"]


def test_restore_into_a_data_dir_the_service_user_cannot_write_changes_nothing(
    place: Path, service_user: pwd.struct_passwd
) -> None:
    """Root could write there; the service user, which restore becomes, cannot."""
    data = place / "data"
    assert pushgod(place, "channel", "create", "x").returncode == 0
    backup = place / "b.db"
    assert pushgod(place, "backup", str(backup)).returncode == 0
    data.chmod(0o550)
    try:
        before = {path.name: path.read_bytes() for path in data.iterdir()}
        done = pushgod(place, "restore", str(backup))
        assert done.returncode == 1
        assert done.stderr.startswith("pushgod: permission denied: ")
        assert done.stderr.rstrip().endswith("(permission_denied)")
        assert {path.name: path.read_bytes() for path in data.iterdir()} == before
    finally:
        data.chmod(0o750)


def test_a_data_dir_of_roots_own_is_used_as_root(tmp_path: Path) -> None:
    """Nothing switches when root owns the directory (a root install, the other tests)."""
    environ = clean_environ() | {
        "PUSHGOD_CONFIG": os.devnull,
        "PUSHGOD_STORAGE_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pushgod", "channel", "create", "mine"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert set(owners(tmp_path / "data").values()) == {0}


def test_as_owner_gives_back_the_effective_group_it_found(place: Path) -> None:
    """Regression: leaving the block set the effective gid to 0, not to what it was."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.setegid(4)  # adm: any group that is not root's
            with as_owner(place / "data"):
                inside = os.geteuid(), os.getegid()
            data = place / "data"
            code = (
                0 if (inside, os.getegid()) == ((data.stat().st_uid, data.stat().st_gid), 4) else 1
            )
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_code_the_owner_cannot_read_is_a_clear_error_not_an_empty_schema(
    tmp_path: Path, service_user: pwd.struct_passwd
) -> None:
    """Regression: `sudo pushgod channel create` from a checkout in a 0700 directory
    became the data's owner, whose glob of the migrations found nothing; the store then
    opened with no tables and the writer thread died on "no such table: changes"."""
    hidden = tmp_path / "private"  # 0700, root's
    hidden.mkdir(mode=0o700)
    shutil.copytree(database.MIGRATIONS, hidden / "migrations")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            database.MIGRATIONS = hidden / "migrations"
            os.setgroups([])
            os.setgid(service_user.pw_gid)
            os.setuid(service_user.pw_uid)
            try:
                found = f"found {database.known_migrations()}"
            except PushgodError as error:
                found = f"{error.code.value}: {error.message}"
            os.write(write, found.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    assert said.startswith(f"{ErrorCode.PERMISSION_DENIED.value}: cannot read pushgod's own files")
    assert "install pushgod where the user who owns the data directory can read it" in said
