"""The `pushgod` command, called in-process as `main([...])` on a data directory in tmp_path."""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pushgod.cli.main import main
from pushgod.config import env_name, keys, load_settings
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.tokens import Scope
from pushgod.service.auth import Credentials
from pushgod.service.services import Services

from .harness import Daemon, basic_auth, free_port

UNKNOWN_CHANNEL = "0" * 26
DAY_MS = 86_400_000


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        """stdout as exactly one JSON object on one line."""
        assert self.code == 0, self.err
        assert self.out.count("\n") == 1 and self.out.endswith("\n"), self.out
        data = json.loads(self.out)
        assert isinstance(data, dict)
        return data

    def error_line(self) -> str:
        """The one line a failing command prints on stderr."""
        assert self.out == ""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


class Cli:
    """`pushgod --config FILE ARGS`, with FILE written by the test."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self._capsys = capsys

    def write_config(self, text: str) -> None:
        self.config.write_text(text)

    def use(self, data_dir: Path, port: int | None = None) -> None:
        text = f"[storage]\ndata_dir = {json.dumps(str(data_dir))}\n"
        if port is not None:
            text += f"[server]\nport = {port}\n"
        self.write_config(text)

    def __call__(self, *args: str) -> Result:
        self._capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        out, err = self._capsys.readouterr()
        return Result(code, out, err)

    def create_channel(self, name: str = "test", *more: str) -> dict[str, Any]:
        return self("channel", "create", name, *more, "--json").json()

    def password_works(self, channel_id: str, password: str) -> bool:
        """Whether the service layer accepts the password (a fresh process memory each time)."""

        async def check() -> bool:
            services = Services(load_settings(str(self.config)))
            services.open()
            try:
                await services.auth.channel_access(
                    channel_id,
                    Credentials(address="test", password=password),
                    frozenset({Scope.PUBLISH}),
                )
            except PushgodError as error:
                assert error.code is ErrorCode.PASSWORD_MISMATCH, error
                return False
            finally:
                services.close()
            return True

        return asyncio.run(check())


@pytest.fixture
def pushgod(tmp_path: Path, capsys: pytest.CaptureFixture[str], host_environ_cleared: None) -> Cli:
    cli = Cli(tmp_path / "pushgod.toml", capsys)
    cli.use(tmp_path / "data")
    return cli


# -- channel --------------------------------------------------------------------------


def test_channel_create_generates_a_password_shown_once(pushgod: Cli) -> None:
    created = pushgod.create_channel("kitchen")
    assert set(created) == {"channel_id", "name", "password"}
    assert created["name"] == "kitchen"
    assert re.fullmatch(r"[0-9A-Z]{26}", created["channel_id"])
    assert pushgod.password_works(created["channel_id"], created["password"])
    listing = pushgod("channel", "list", "--json").json()
    assert created["password"] not in json.dumps(listing)


def test_channel_create_with_a_password(pushgod: Cli) -> None:
    created = pushgod.create_channel("garage", "--password", "correct horse")
    assert created["password"] == "correct horse"
    assert pushgod.password_works(created["channel_id"], "correct horse")
    assert not pushgod.password_works(created["channel_id"], "wrong horse")


def test_channel_create_prints_key_value_lines_without_json(pushgod: Cli) -> None:
    result = pushgod("channel", "create", "attic")
    assert result.code == 0, result.err
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", result.out, re.MULTILINE))
    assert fields["name"] == "attic"
    assert pushgod.password_works(fields["channel_id"], fields["password"])


def test_channel_list(pushgod: Cli) -> None:
    first = pushgod.create_channel("one")
    second = pushgod.create_channel("two")
    listing = pushgod("channel", "list", "--json").json()
    assert [(c["channel_id"], c["name"]) for c in listing["channels"]] == [
        (first["channel_id"], "one"),
        (second["channel_id"], "two"),
    ]
    table = pushgod("channel", "list")
    assert table.code == 0
    header, *rows = table.out.splitlines()
    assert header.split() == [
        "channel_id",
        "name",
        "created",
        "retention_count",
        "retention_age_ms",
    ]
    assert [row.split()[:2] for row in rows] == [
        [first["channel_id"], "one"],
        [second["channel_id"], "two"],
    ]


def test_channel_rename(pushgod: Cli) -> None:
    channel_id = pushgod.create_channel("old name")["channel_id"]
    renamed = pushgod("channel", "rename", channel_id, "new name", "--json").json()
    assert renamed == {"channel_id": channel_id, "name": "new name"}
    listing = pushgod("channel", "list", "--json").json()
    assert [c["name"] for c in listing["channels"]] == ["new name"]


def test_channel_passwd_replaces_the_password(pushgod: Cli) -> None:
    created = pushgod.create_channel("passwd")
    channel_id = created["channel_id"]
    changed = pushgod("channel", "passwd", channel_id, "--password", "brand new one", "--json")
    assert changed.json() == {"channel_id": channel_id, "password": "brand new one"}
    assert pushgod.password_works(channel_id, "brand new one")
    assert not pushgod.password_works(channel_id, created["password"])

    generated = pushgod("channel", "passwd", channel_id, "--json").json()["password"]
    assert generated != "brand new one"
    assert pushgod.password_works(channel_id, generated)
    assert not pushgod.password_works(channel_id, "brand new one")


def test_channel_passwd_with_an_empty_password_changes_nothing(pushgod: Cli) -> None:
    """Regression: `--password ""` counted as no --password at all.

    `channel passwd ID --password "$NEW"` with NEW unset replaced the password with a
    random one (printed, but a script would not read it), locking out every sender.
    An empty password is invalid, as it is for `channel create`.
    """
    created = pushgod.create_channel("empty passwd")
    result = pushgod("channel", "passwd", created["channel_id"], "--password", "")
    assert result.code == 1
    assert result.error_line().endswith("(invalid_password)")
    assert pushgod.password_works(created["channel_id"], created["password"])


def test_channel_create_refuses_a_non_ascii_count_before_touching_the_data_dir(
    pushgod: Cli, tmp_path: Path
) -> None:
    """'²'.isdigit() is true, so --retention-count ² ended in a ValueError traceback."""
    result = pushgod("channel", "create", "c", "--retention-count", "\u00b2")
    assert result.code == 1
    assert result.error_line().endswith("(invalid_field)")
    assert not (tmp_path / "data").exists()


def test_channel_retention(pushgod: Cli) -> None:
    channel_id = pushgod.create_channel("keep")["channel_id"]
    kept = pushgod("channel", "retention", channel_id, "--count", "5", "--age", "7d", "--json")
    assert kept.json() == {
        "channel_id": channel_id,
        "retention_count": 5,
        "retention_age_ms": 7 * DAY_MS,
    }
    reset = pushgod(
        "channel", "retention", channel_id, "--count", "none", "--age", "none", "--json"
    )
    assert reset.json() == {
        "channel_id": channel_id,
        "retention_count": None,
        "retention_age_ms": None,
    }
    listing = pushgod("channel", "list", "--json").json()
    assert listing["channels"][0]["retention_count"] is None


def test_channel_delete(pushgod: Cli) -> None:
    keep = pushgod.create_channel("keep")["channel_id"]
    gone = pushgod.create_channel("gone")["channel_id"]
    deleted = pushgod("channel", "delete", gone, "--json").json()
    assert deleted == {"channel_id": gone, "deleted": True}
    listing = pushgod("channel", "list", "--json").json()
    assert [c["channel_id"] for c in listing["channels"]] == [keep]
    again = pushgod("channel", "delete", gone)
    assert again.code == 1
    assert "(channel_not_found)" in again.error_line()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["channel", "rename", UNKNOWN_CHANNEL, "x"], "channel_not_found"),
        (["channel", "rename", "not-a-channel-id", "x"], "invalid_channel_id"),
        (["channel", "passwd", UNKNOWN_CHANNEL, "--password", "long enough"], "channel_not_found"),
        (["channel", "create", "short", "--password", "short"], "invalid_password"),
        (["channel", "create", "   "], "invalid_channel_name"),
        (["channel", "create", "bad count", "--retention-count", "0"], "invalid_field"),
        (["channel", "create", "bad age", "--retention-age", "soon"], "invalid_duration"),
        (["channel", "retention", UNKNOWN_CHANNEL, "--count", "3"], "channel_not_found"),
        (["channel", "delete", UNKNOWN_CHANNEL], "channel_not_found"),
        (["token", "revoke", "0123456789abcdef"], "token_not_found"),
        (
            ["token", "create", "--channel", UNKNOWN_CHANNEL, "--scope", "publish"],
            "channel_not_found",
        ),
        (["token", "create", "--admin", "--channel", UNKNOWN_CHANNEL], "invalid_scope"),
        (["token", "create", "--channel", UNKNOWN_CHANNEL], "invalid_scope"),
        (["token", "create", "--channel", UNKNOWN_CHANNEL, "--scope", "root"], "invalid_scope"),
        (["token", "create", "--admin", "--expires", "later"], "invalid_duration"),
    ],
)
def test_service_errors_exit_1_with_the_error_code(
    pushgod: Cli, args: list[str], code: str
) -> None:
    result = pushgod(*args)
    assert result.code == 1
    line = result.error_line()
    assert line.startswith("pushgod: ")
    assert line.endswith(f"({code})")


# -- token ----------------------------------------------------------------------------


def test_token_create_for_a_channel(pushgod: Cli) -> None:
    channel_id = pushgod.create_channel()["channel_id"]
    created = pushgod(
        "token",
        "create",
        "--channel",
        channel_id,
        "--scope",
        "publish,subscribe",
        "--label",
        "backup script",
        "--expires",
        "30d",
        "--json",
    ).json()
    assert created["channel_id"] == channel_id
    assert sorted(created["scopes"]) == ["publish", "subscribe"]
    assert created["label"] == "backup script"
    assert created["expires_at"] - created["created_at"] == 30 * DAY_MS
    assert created["token"].startswith("pgd_")


def test_token_create_admin(pushgod: Cli) -> None:
    created = pushgod("token", "create", "--admin", "--json").json()
    assert created["channel_id"] is None
    assert created["scopes"] == ["admin"]
    assert created["expires_at"] is None


def test_admin_token_with_a_scope_is_refused(pushgod: Cli) -> None:
    """Regression: --admin silently dropped --scope.

    `token create --admin --scope subscribe` looks like a read-only token but made one
    with every right on every channel. Asking for both is now an error, and no token
    is created.
    """
    result = pushgod("token", "create", "--admin", "--scope", "subscribe")
    assert result.code == 1
    assert result.error_line().endswith("(invalid_scope)")
    assert pushgod("token", "list", "--json").json() == {"tokens": []}


def test_token_list_never_prints_a_secret(pushgod: Cli) -> None:
    channel_id = pushgod.create_channel()["channel_id"]
    one = pushgod("token", "create", "--channel", channel_id, "--scope", "publish", "--json")
    two = pushgod("token", "create", "--admin", "--label", "ops", "--json")
    tokens = [one.json(), two.json()]

    listing = pushgod("token", "list", "--json").json()
    assert [t["token_id"] for t in listing["tokens"]] == [t["token_id"] for t in tokens]
    table = pushgod("token", "list")
    assert table.code == 0
    for token in tokens:
        assert token["token_id"] in table.out
        for output in (table.out, json.dumps(listing)):
            assert token["token"] not in output
            assert token["token"].removeprefix("pgd_")[:12] not in output
    assert "ops" in table.out

    mine = pushgod("token", "list", "--channel", channel_id, "--json").json()
    assert [t["token_id"] for t in mine["tokens"]] == [tokens[0]["token_id"]]


def test_token_revoke(pushgod: Cli) -> None:
    channel_id = pushgod.create_channel()["channel_id"]
    token_id = pushgod(
        "token", "create", "--channel", channel_id, "--scope", "publish", "--json"
    ).json()["token_id"]
    revoked = pushgod("token", "revoke", token_id, "--json").json()
    assert revoked == {"token_id": token_id, "revoked": True}
    assert pushgod("token", "list", "--json").json() == {"tokens": []}
    again = pushgod("token", "revoke", token_id)
    assert again.code == 1
    assert again.error_line().endswith("(token_not_found)")


# -- config ---------------------------------------------------------------------------


def _settings_shown(pushgod: Cli) -> dict[str, Any]:
    result = pushgod("config", "show")
    assert result.code == 0, result.err
    shown: dict[str, Any] = json.loads(result.out)
    del shown["source"]
    return shown


def test_config_example_lists_every_key_and_parses(pushgod: Cli) -> None:
    example = pushgod("config", "example")
    assert example.code == 0
    document = tomllib.loads(example.out)
    assert all(section == {} for section in document.values()), "a key is not commented out"
    for section, item, _ in keys():
        assert f"#{item.name} = " in example.out
        assert env_name(section, item.name) in example.out
    # Uncommented, the example is a valid file that holds exactly the defaults.
    pushgod.write_config(re.sub(r"^#(\w+ = )", r"\1", example.out, flags=re.MULTILINE))
    assert pushgod("config", "check").code == 0
    uncommented = _settings_shown(pushgod)
    pushgod.write_config("")
    assert uncommented == _settings_shown(pushgod)


def test_config_check(pushgod: Cli) -> None:
    result = pushgod("config", "check")
    assert result.code == 0
    assert result.out.startswith("ok: ")
    assert str(pushgod.config) in result.out


def test_config_show_hides_secrets(pushgod: Cli) -> None:
    pushgod.write_config(
        '[server]\ngateway_token = "gateway-secret-1234"\nport = 9999\n'
        '[oauth]\npredefined_clients = "claude:client-secret-5678"\n'
    )
    result = pushgod("config", "show")
    assert result.code == 0
    assert "gateway-secret-1234" not in result.out
    assert "client-secret-5678" not in result.out
    shown = json.loads(result.out)
    assert shown["server"]["gateway_token"] == "(set)"
    assert shown["oauth"]["predefined_clients"] == "(set)"
    assert shown["server"]["port"] == 9999
    assert shown["source"] == str(pushgod.config)


@pytest.mark.parametrize("command", [["config", "check"], ["channel", "list"]])
@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PUSHGOD_SERVER_PORT", "abc", "server.port"),
        ("PUSHGOD_SERVER_PORT", "70000", "server.port"),
        ("PUSHGOD_STORAGE_SYNCHRONOUS", "sometimes", "storage.synchronous"),
        ("PUSHGOD_MCP_ENABLED", "yes", "mcp.enabled"),
        ("PUSHGOD_SERVER_PROT", "8750", "PUSHGOD_SERVER_PROT"),
        ("PUSHGO_PUBLIC_BASE_URL", "ftp://example.net", "server.public_base_url"),
    ],
)
def test_invalid_environment_exits_2_with_one_line_naming_the_key(
    pushgod: Cli,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    variable: str,
    value: str,
    named: str,
) -> None:
    monkeypatch.setenv(variable, value)
    result = pushgod(*command)
    assert result.code == 2
    line = result.error_line()
    assert named in line
    assert variable in line


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[server]\nprot = 8750\n", "server.prot"),
        ("[sever]\nport = 8750\n", "sever"),
        ('[server]\nport = "abc"\n', "server.port"),
        ('[retention]\ncleanup_interval = "often"\n', "retention.cleanup_interval"),
        ("[server\nport = 1\n", "not valid TOML"),
    ],
)
def test_invalid_config_file_exits_2_with_one_line_naming_the_key(
    pushgod: Cli, toml: str, named: str
) -> None:
    pushgod.write_config(toml)
    result = pushgod("config", "check")
    assert result.code == 2
    line = result.error_line()
    assert named in line
    assert str(pushgod.config) in line


def test_invalid_secret_is_not_repeated(pushgod: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHGOD_OAUTH_PREDEFINED_CLIENTS", "no-colon-secret-9876")
    result = pushgod("config", "show")
    assert result.code == 2
    line = result.error_line()
    assert "oauth.predefined_clients" in line
    assert "no-colon-secret-9876" not in line


def test_missing_config_file_exits_2(pushgod: Cli, tmp_path: Path) -> None:
    pushgod.config = tmp_path / "absent.toml"
    result = pushgod("config", "check")
    assert result.code == 2
    assert str(pushgod.config) in result.error_line()


def test_unusable_data_dir_exits_1_with_one_line(pushgod: Cli, tmp_path: Path) -> None:
    """Regression: an OSError from opening the data directory escaped `main()` as a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    pushgod.use(blocker / "data")
    result = pushgod("channel", "list")
    assert result.code == 1
    assert str(blocker / "data") in result.error_line()


def test_data_dir_from_the_environment(
    host_environ_cleared: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --config: PUSHGOD_CONFIG and PUSHGOD_STORAGE_DATA_DIR, as a unit file sets them."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    data_dir = tmp_path / "from-env"
    monkeypatch.setenv("PUSHGOD_CONFIG", str(empty))
    monkeypatch.setenv("PUSHGOD_STORAGE_DATA_DIR", str(data_dir))
    assert main(["channel", "create", "env", "--json"]) == 0
    channel_id = json.loads(capsys.readouterr().out)["channel_id"]
    assert (data_dir / "pushgod.db").exists()
    assert main(["channel", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [c["channel_id"] for c in listing["channels"]] == [channel_id]


# -- send -----------------------------------------------------------------------------


def _titles(daemon: Daemon, channel_id: str, password: str) -> list[str]:
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1, our test daemon
        f"{daemon.url}/api/v1/channels/{channel_id}/messages",
        headers=basic_auth(channel_id, password),
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        return [m["title"] for m in json.load(reply)["data"]["messages"]]


@pytest.fixture
def live(pushgod: Cli, daemon: Daemon) -> Daemon:
    """A running daemon; the in-process CLI uses its data directory and port."""
    pushgod.use(daemon.data_dir, daemon.run.port)
    return daemon


def test_send_with_password_to_the_configured_server(pushgod: Cli, live: Daemon) -> None:
    created = pushgod.create_channel("send")
    channel_id, password = created["channel_id"], created["password"]
    result = pushgod(
        "send",
        "--channel",
        channel_id,
        "--password",
        password,
        "Disk full",
        "92 % used",
        "--severity",
        "high",
    )
    assert result.code == 0, result.err
    assert re.search(r"^message_id:\s+[0-9a-f]{32}$", result.out, re.MULTILINE)
    assert _titles(live, channel_id, password) == ["Disk full"]


def test_send_with_token_to_an_explicit_server(pushgod: Cli, live: Daemon) -> None:
    created = pushgod.create_channel("send")
    channel_id = created["channel_id"]
    token = pushgod(
        "token", "create", "--channel", channel_id, "--scope", "publish", "--json"
    ).json()["token"]
    pushgod.use(live.data_dir)  # the default port is wrong: --server must be used
    server = live.url + "/"
    result = pushgod(
        "send",
        "--server",
        server,
        "--channel",
        channel_id,
        "--token",
        token,
        "Backup done",
        "--json",
    )
    sent = result.json()
    assert sent["channel_id"] == channel_id
    assert _titles(live, channel_id, created["password"]) == ["Backup done"]


def test_send_with_a_wrong_password_exits_1_with_the_error_code(pushgod: Cli, live: Daemon) -> None:
    channel_id = pushgod.create_channel("send")["channel_id"]
    result = pushgod("send", "--channel", channel_id, "--password", "not the password", "hi")
    assert result.code == 1
    assert result.error_line().endswith("(password_mismatch)")

    as_json = pushgod(
        "send", "--channel", channel_id, "--password", "not the password", "hi", "--json"
    )
    assert as_json.code == 1
    reply = json.loads(as_json.out)
    assert reply["success"] is False
    assert reply["error_code"] == "password_mismatch"


def test_send_to_a_server_that_is_not_there_exits_1(pushgod: Cli) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    result = pushgod(
        "send", "--server", server, "--channel", UNKNOWN_CHANNEL, "--password", "x" * 8, "hi"
    )
    assert result.code == 1
    assert result.error_line().startswith(f"pushgod: cannot reach {server}")
