"""Settings: defaults < TOML file < PUSHGO_* < PUSHGOD_* < command line, and every bad value."""

from __future__ import annotations

import dataclasses
import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgod import config
from pushgod.config import (
    Settings,
    effective,
    env_name,
    example_toml,
    keys,
    load_settings,
    markdown_reference,
    parse_clients,
)
from pushgod.model.errors import ErrorCode, PushgodError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Zq9"


@pytest.fixture(autouse=True, scope="module")
def no_system_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """/etc/pushgod/pushgod.toml of the machine running the tests must not leak in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "SYSTEM_CONFIG", tmp_path_factory.mktemp("etc") / "absent.toml")
        yield


def write(tmp_path: Path, text: str, name: str = "pushgod.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def invalid(label: str, origin: str) -> pytest.RaisesExc[PushgodError]:
    """invalid_config, naming the key and where the value came from."""
    prefix = f"{label} (from {origin}): "
    return pytest.raises(
        PushgodError,
        check=lambda error: (
            error.code is ErrorCode.INVALID_CONFIG and error.message.startswith(prefix)
        ),
    )


# -- defaults and sources ----------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.source == "built-in defaults"
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8750)
    assert settings.server.gateway_token == ""
    assert settings.storage.synchronous == "full"
    assert settings.retention.message_age == 30 * 86_400_000
    assert settings.retention.cleanup_interval == 600_000
    assert settings.mcp.enabled is False
    assert settings.data_dir == Path("var")


def test_every_key_is_declared_consistently() -> None:
    for section, item, key in keys():
        label = f"{section}.{item.name}"
        assert key.help.strip(), f"{label} has no help text"
        assert "|" not in key.help, f"{label}: '|' would break the table in docs/configuration.md"
        assert key.kind in {"str", "int", "bool", "duration", "choice", "url", "clients"}, label
        if key.kind == "choice":
            assert item.default in key.choices, label
        if key.kind in ("int", "duration"):
            assert key.minimum is None or item.default >= key.minimum, label
            assert key.maximum is None or item.default <= key.maximum, label
        assert all(alias.startswith("PUSHGO_") for alias in key.aliases), label
    assert {f"{s}.{i.name}" for s, i, k in keys() if k.secret} == {
        "server.gateway_token",
        "oauth.predefined_clients",
        "mqtt.password",
        "mqtt.admin_password",
    }


def test_env_names() -> None:
    assert env_name("server", "port") == "PUSHGOD_SERVER_PORT"
    assert env_name("retention", "message_age") == "PUSHGOD_RETENTION_MESSAGE_AGE"


def test_every_key_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "PUSHGOD_SERVER_HOST": "192.0.2.7",
            "PUSHGOD_SERVER_PORT": " 9000 ",
            "PUSHGOD_SERVER_PUBLIC_BASE_URL": "https://push.example.net/",
            "PUSHGOD_SERVER_GATEWAY_TOKEN": SECRET,
            "PUSHGOD_SERVER_SHUTDOWN_TIMEOUT": "0",
            "PUSHGOD_STORAGE_DATA_DIR": "/var/lib/pushgod",
            "PUSHGOD_STORAGE_SYNCHRONOUS": "normal",
            "PUSHGOD_RETENTION_MESSAGES_PER_CHANNEL": "5",
            "PUSHGOD_RETENTION_MESSAGE_AGE": "2w",
            "PUSHGOD_RETENTION_THING_HISTORY": "7",
            "PUSHGOD_RETENTION_EVENT_UPDATES": "11",
            "PUSHGOD_RETENTION_CLOSED_EVENT_AGE": "12h",
            "PUSHGOD_RETENTION_CLEANUP_INTERVAL": "90",
            "PUSHGOD_SECURITY_PASSWORD_THREADS": "16",
            "PUSHGOD_SECURITY_FAILED_LOGINS": "3",
            "PUSHGOD_SECURITY_FAILED_LOGIN_WINDOW": "1m",
            "PUSHGOD_LOG_LEVEL": "debug",
            "PUSHGOD_MCP_ENABLED": "TRUE",
            "PUSHGOD_OAUTH_PREDEFINED_CLIENTS": f"app:{SECRET};cli:x:y",
            "PUSHGOD_OAUTH_REGISTRATION": "false",
            "PUSHGOD_OAUTH_CLIENT_DOCUMENTS": "0",
            "PUSHGOD_OAUTH_CLIENT_DOCUMENTS_PRIVATE_HOSTS": "1",
            "PUSHGOD_CONFIG": "",
            "PUSHGO_SOMETHING_ELSE": "PushGo's own names that pushgod does not use are ignored",
        }
    )
    assert settings.server == config.ServerSettings(
        "192.0.2.7", 9000, "https://push.example.net", SECRET, 0
    )
    assert settings.storage == config.StorageSettings("/var/lib/pushgod", "normal")
    assert settings.retention == config.RetentionSettings(
        5, 14 * 86_400_000, 7, 11, 12 * 3_600_000, 90_000
    )
    assert settings.security == config.SecuritySettings(16, 3, 60_000)
    assert settings.log.level == "debug"
    assert settings.mcp == config.McpSettings(True)
    assert settings.oauth == config.OAuthSettings(False, False, True, f"app:{SECRET};cli:x:y")


def test_every_kind_from_toml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [server]
        port = 8080
        public_base_url = "http://nas.local:8750"
        shutdown_timeout = 10          # an integer duration is seconds

        [retention]
        message_age = "30d"

        [mcp]
        enabled = true
        """,
    )
    settings = load_settings(path, environ={})
    assert settings.source == path
    assert settings.server.port == 8080
    assert settings.server.public_base_url == "http://nas.local:8750"
    assert settings.server.shutdown_timeout == 10_000
    assert settings.retention.message_age == 30 * 86_400_000
    assert settings.mcp.enabled is True
    assert settings.storage == config.StorageSettings()  # untouched sections keep defaults


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("1", True), ("False", False), ("0", False)]
)
def test_booleans_from_the_environment(text: str, value: bool) -> None:
    assert load_settings(environ={"PUSHGOD_MCP_ENABLED": text}).mcp.enabled is value


LAYERS = ("file", "pushgo", "pushgod", "cli")
# key, its PushGo alias, and per layer: the value given (typed in the file and on the command
# line, text in the environment) and the value it means.
PRECEDENCE_CASES = [
    (
        ("server", "public_base_url"),
        "PUSHGO_PUBLIC_BASE_URL",
        {
            "file": ("https://f.example/", "https://f.example"),
            "pushgo": ("https://a.example", "https://a.example"),
            "pushgod": ("http://e.example//", "http://e.example"),
            "cli": ("https://c.example", "https://c.example"),
        },
    ),
    (
        ("server", "gateway_token"),
        "PUSHGO_TOKEN",
        {
            "file": ("file-token", "file-token"),
            "pushgo": ("alias-token", "alias-token"),
            "pushgod": ("env-token", "env-token"),
            "cli": ("cli-token", "cli-token"),
        },
    ),
    (
        ("mcp", "enabled"),
        "PUSHGO_MCP_ENABLED",
        {
            "file": (True, True),
            "pushgo": ("false", False),
            "pushgod": ("1", True),
            "cli": (False, False),
        },
    ),
]


@pytest.mark.parametrize(("key", "alias", "values"), PRECEDENCE_CASES)
@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=4)))
def test_precedence(
    tmp_path: Path,
    key: tuple[str, str],
    alias: str,
    values: dict[str, tuple[Any, Any]],
    present: tuple[bool, ...],
) -> None:
    """Every combination of layers: the highest one present wins, else the default."""
    layers = dict(zip(LAYERS, present, strict=True))
    section, name = key
    path = None
    if layers["file"]:
        value = values["file"][0]
        literal = str(value).lower() if isinstance(value, bool) else f'"{value}"'
        path = write(tmp_path, f"[{section}]\n{name} = {literal}\n")
    environ = {}
    if layers["pushgo"]:
        environ[alias] = values["pushgo"][0]
    if layers["pushgod"]:
        environ[env_name(section, name)] = values["pushgod"][0]
    overrides = {key: values["cli"][0]} if layers["cli"] else None
    settings = load_settings(path, environ=environ, overrides=overrides)
    winner = next((layer for layer in reversed(LAYERS) if layers[layer]), None)
    expected = values[winner][1] if winner else getattr(getattr(Settings(), section), name)
    assert getattr(getattr(settings, section), name) == expected


def test_the_file_comes_from_the_argument_then_pushgod_config_then_etc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write(tmp_path, "[server]\nport = 1001\n", "explicit.toml")
    named = write(tmp_path, "[server]\nport = 1002\n", "named.toml")
    system = write(tmp_path, "[server]\nport = 1003\n", "system.toml")
    monkeypatch.setattr(config, "SYSTEM_CONFIG", Path(system))
    assert load_settings(explicit, environ={"PUSHGOD_CONFIG": named}).server.port == 1001
    assert load_settings(environ={"PUSHGOD_CONFIG": named}).server.port == 1002
    settings = load_settings(environ={})
    assert (settings.server.port, settings.source) == (1003, system)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "missing.toml")
    assert load_settings(environ={}).source == "built-in defaults"


def test_drop_ins_beside_the_file_are_read_after_it_in_name_order(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 1001\nhost = "0.0.0.0"\n')
    drop_ins = tmp_path / "conf.d"
    drop_ins.mkdir()
    (drop_ins / "20-port.toml").write_text("[server]\nport = 1003\n")
    (drop_ins / "10-port.toml").write_text("[server]\nport = 1002\n")
    (drop_ins / "secrets.toml").write_text(f'[mqtt]\npassword = "{SECRET}"\n')
    (drop_ins / "notes.txt").write_text("not TOML, not read")
    settings = load_settings(path, environ={"PUSHGOD_SERVER_HOST": "::"})
    assert (settings.server.host, settings.server.port) == ("::", 1003)
    assert settings.mqtt.password == SECRET
    assert settings.source == ", ".join(
        [path, *(str(drop_ins / name) for name in ("10-port.toml", "20-port.toml", "secrets.toml"))]
    )


def test_a_bad_drop_in_is_named_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 1001\n")
    (tmp_path / "conf.d").mkdir()
    bad = tmp_path / "conf.d" / "secrets.toml"
    bad.write_text(f'[mqtt]\npasword = "{SECRET}"\n')
    with invalid("mqtt.pasword", str(bad)) as caught:
        load_settings(path, environ={})
    assert SECRET not in caught.value.message
    bad.write_text(f'[mqtt]\npassword = ["{SECRET}"]\n')
    with invalid("mqtt.password", str(bad)) as caught:
        load_settings(path, environ={})
    assert SECRET not in caught.value.message


# -- invalid values ----------------------------------------------------------------------------

ENV_ERRORS = [
    ("PUSHGOD_SERVER_PORT", "eighty", "server.port", "expected an integer"),
    ("PUSHGOD_SERVER_PORT", "", "server.port", "expected an integer"),
    ("PUSHGOD_SERVER_PORT", "8750.0", "server.port", "expected an integer"),
    ("PUSHGOD_SERVER_PORT", "-1", "server.port", "at least 0"),
    ("PUSHGOD_SERVER_PORT", "65536", "server.port", "at most 65535"),
    ("PUSHGOD_SECURITY_PASSWORD_THREADS", "17", "security.password_threads", "at most 16"),
    (
        "PUSHGOD_RETENTION_MESSAGES_PER_CHANNEL",
        "-1",
        "retention.messages_per_channel",
        "at least 1",
    ),
    ("PUSHGOD_MCP_ENABLED", "yes", "mcp.enabled", "expected true or false"),
    ("PUSHGOD_MCP_ENABLED", "", "mcp.enabled", "expected true or false"),
    ("PUSHGO_MCP_ENABLED", "maybe", "mcp.enabled", "expected true or false"),
    ("PUSHGOD_RETENTION_MESSAGE_AGE", "30 days", "retention.message_age", "duration"),
    ("PUSHGOD_RETENTION_MESSAGE_AGE", "-5s", "retention.message_age", "duration"),
    ("PUSHGOD_SERVER_SHUTDOWN_TIMEOUT", "1.5s", "server.shutdown_timeout", "duration"),
    ("PUSHGOD_RETENTION_CLEANUP_INTERVAL", "0", "retention.cleanup_interval", "at least"),
    ("PUSHGOD_RETENTION_MESSAGE_AGE", "0s", "retention.message_age", "at least"),
    ("PUSHGOD_SECURITY_FAILED_LOGIN_WINDOW", "0ms", "security.failed_login_window", "at least"),
    ("PUSHGOD_STORAGE_SYNCHRONOUS", "off", "storage.synchronous", "expected one of full, normal"),
    ("PUSHGOD_LOG_LEVEL", "INFO", "log.level", "expected one of debug, info, warning, error"),
    ("PUSHGOD_SERVER_PUBLIC_BASE_URL", "push.example.net", "server.public_base_url", "URL"),
    ("PUSHGOD_SERVER_PUBLIC_BASE_URL", "ftp://x.net", "server.public_base_url", "URL"),
    ("PUSHGOD_SERVER_PUBLIC_BASE_URL", "https://", "server.public_base_url", "URL"),
    ("PUSHGO_PUBLIC_BASE_URL", "nope", "server.public_base_url", "URL"),
]


@pytest.mark.parametrize(("name", "value", "label", "problem"), ENV_ERRORS)
def test_invalid_environment_values(name: str, value: str, label: str, problem: str) -> None:
    with invalid(label, name) as caught:
        load_settings(environ={name: value})
    assert problem in caught.value.message


TOML_ERRORS = [
    ("server", "port", '"eighty"', "expected an integer"),
    ("server", "port", "8750.0", "expected an integer"),
    ("server", "port", "true", "expected an integer"),
    ("server", "port", "70000", "at most 65535"),
    ("server", "host", "5", "expected a string"),
    ("server", "public_base_url", '"www.example.net"', "URL"),
    ("server", "shutdown_timeout", "1.5", "duration"),
    ("server", "shutdown_timeout", "true", "duration"),
    ("server", "shutdown_timeout", "-5", "negative"),
    ("retention", "message_age", '"forever"', "duration"),
    ("retention", "cleanup_interval", '"0s"', "at least"),
    ("retention", "cleanup_interval", "0", "at least"),
    ("storage", "synchronous", '"extra"', "expected one of"),
    ("storage", "synchronous", "1", "expected a string"),
    ("log", "level", '["info"]', "expected a string"),
    ("mcp", "enabled", '"maybe"', "expected true or false"),
]


@pytest.mark.parametrize(("section", "name", "literal", "problem"), TOML_ERRORS)
def test_invalid_file_values(
    tmp_path: Path, section: str, name: str, literal: str, problem: str
) -> None:
    path = write(tmp_path, f"[{section}]\n{name} = {literal}\n")
    with invalid(f"{section}.{name}", path) as caught:
        load_settings(path, environ={})
    assert problem in caught.value.message


@pytest.mark.parametrize(
    ("key", "value"),
    [(("server", "port"), "x"), (("server", "port"), -1), (("log", "level"), "loud")],
)
def test_invalid_command_line_values(key: tuple[str, str], value: object) -> None:
    with invalid(".".join(key), "the command line"):
        load_settings(environ={}, overrides={key: value})


def test_a_bad_lower_layer_is_reported_even_when_a_higher_one_is_good(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 70000\n")
    with invalid("server.port", path):
        load_settings(path, environ={"PUSHGOD_SERVER_PORT": "8080"})


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("[nosuch]\nkey = 1\n", "nosuch"),
        ("port = 8750\n", "port"),  # a key outside any section
        ("server = 1\n", "server"),  # a known section name that is not a table
        ("[server]\nprot = 8750\n", "server.prot"),
        ("[server.tls]\ncert = 'x'\n", "server.tls"),
        ("[mcp]\nenabled = true\n[mcp_extra]\n", "mcp_extra"),
    ],
)
def test_unknown_sections_and_keys(tmp_path: Path, text: str, label: str) -> None:
    path = write(tmp_path, text)
    with invalid(label, path) as caught:
        load_settings(path, environ={})
    assert "unknown" in caught.value.message


def test_unknown_pushgod_environment_variables() -> None:
    with invalid("PUSHGOD_SERVER_PROT", "the environment") as caught:
        load_settings(environ={"PUSHGOD_SERVER_PROT": "1"})
    assert "unknown setting" in caught.value.message


def test_bad_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 8750\n")
    with invalid("config file", path) as caught:
        load_settings(path, environ={})
    assert "not valid TOML" in caught.value.message


def test_a_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere.toml")
    with invalid("config file", path):
        load_settings(path, environ={})
    with invalid("config file", path):
        load_settings(environ={"PUSHGOD_CONFIG": path})


@pytest.mark.parametrize(
    "value",
    [
        f"app{SECRET}",
        f"app:{SECRET};{SECRET}",
        f":{SECRET}",
        "app:",
        f"app:{SECRET}\nlonely-{SECRET}",
    ],
)
@pytest.mark.parametrize(
    "name", ["PUSHGOD_OAUTH_PREDEFINED_CLIENTS", "PUSHGO_MCP_PREDEFINED_CLIENTS"]
)
def test_bad_predefined_clients_are_refused_without_repeating_them(name: str, value: str) -> None:
    with invalid("oauth.predefined_clients", name) as caught:
        load_settings(environ={name: value})
    assert SECRET not in caught.value.message
    assert SECRET not in repr(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        f'[oauth]\npredefined_clients = "{SECRET}"\n',
        f'[oauth]\npredefined_clients = ["app:{SECRET}"]\n',
        f'[server]\ngateway_token = ["{SECRET}"]\n',
        f'[server]\ngateway_token = {{ value = "{SECRET}" }}\n',
        f'[server]\ngateway_tokn = "{SECRET}"\n',  # a misspelt key
        f'[server]\ngateway_token = "{SECRET}\n',  # an unterminated string
        f"[server]\ngateway_token = {SECRET}\n",  # no quotes
        f'[server]\ngateway_token = """{SECRET}\n',
        f'[server]\ngateway_token = "{SECRET}\\q"\n',  # a bad escape
        f'[server]\ngateway_token = "{SECRET}" "{SECRET}"\n',
    ],
)
def test_secrets_in_the_file_never_appear_in_errors(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PushgodError) as caught:
        load_settings(path, environ={})
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    assert caught.value.message.startswith(("config file", "server.", "oauth."))
    assert SECRET not in caught.value.message


def test_secrets_from_the_command_line_never_appear_in_errors() -> None:
    for key, value in (
        (("oauth", "predefined_clients"), SECRET),
        (("server", "gateway_token"), [SECRET]),
    ):
        with invalid(".".join(key), "the command line") as caught:
            load_settings(environ={}, overrides={key: value})
        assert SECRET not in caught.value.message


@given(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30))
def test_any_predefined_clients_text_is_accepted_or_refused_without_echo(value: str) -> None:
    name = "PUSHGOD_OAUTH_PREDEFINED_CLIENTS"
    try:
        settings = load_settings(environ={name: value})
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_CONFIG
        assert error.message == f"oauth.predefined_clients (from {name}): invalid value"
        return
    assert settings.oauth.predefined_clients == value


@given(
    st.dictionaries(
        st.sampled_from([env_name(s, i.name) for s, i, _ in keys()]), st.text(max_size=8)
    )
)
def test_any_environment_loads_or_fails_with_invalid_config(environ: dict[str, str]) -> None:
    try:
        load_settings(environ=environ)
    except PushgodError as error:
        assert error.code is ErrorCode.INVALID_CONFIG
        match = re.fullmatch(r"(\S+) \(from (\S+)\): .+", error.message)
        assert match, error.message
        label, origin = match.groups()
        assert origin in environ and env_name(*label.split(".")) == origin


# -- predefined clients ------------------------------------------------------------------------


def test_parse_clients() -> None:
    assert parse_clients("") == []
    assert parse_clients("a:1;b:2:3") == [("a", "1"), ("b", "2:3")]
    assert parse_clients(" a:1 ;\n\n b:2 ;;") == [("a", "1"), ("b", "2")]
    for bad in ("a", "a:", ":1", "a:1;b"):
        with pytest.raises(ValueError, match="client_id:secret") as caught:
            parse_clients(bad)
        assert "1" not in str(caught.value).replace("'client_id:secret'", "")


# -- what is shown to people -------------------------------------------------------------------


def test_effective_settings_hide_secrets() -> None:
    shown = effective(
        load_settings(
            environ={
                "PUSHGOD_SERVER_GATEWAY_TOKEN": SECRET,
                "PUSHGOD_RETENTION_MESSAGE_AGE": "14d",
            }
        )
    )
    assert shown["server"]["gateway_token"] == "(set)"
    assert shown["oauth"]["predefined_clients"] == ""
    assert shown["retention"]["message_age"] == "2w"
    assert shown["server"]["port"] == 8750
    assert SECRET not in repr(shown)
    assert {(s, n) for s, values in shown.items() for n in values} == {
        (s, i.name) for s, i, _ in keys()
    }


def test_contrib_pushgod_toml_is_current() -> None:
    current = (ROOT / "contrib" / "pushgod.toml").read_text()
    assert current == example_toml(), "contrib/pushgod.toml is stale: run `make docs`"


def test_docs_configuration_md_is_current() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == markdown_reference(), "docs/configuration.md is stale: run `make docs`"


def test_every_key_is_documented() -> None:
    example, reference = example_toml(), markdown_reference()
    for section, item, key in keys():
        assert f"[{section}]" in example
        assert f"\n#{item.name} = " in example
        row = next(
            line
            for line in reference.splitlines()
            if line.startswith(f"| `{section}.{item.name}` |")
        )
        assert key.help in row
        for name in (env_name(section, item.name), *key.aliases):
            assert f"`{name}`" in row
            assert name in example


def test_the_example_file_uncommented_gives_the_defaults(tmp_path: Path) -> None:
    text = re.sub(r"(?m)^#(\w+ = )", r"\1", example_toml())
    assert len(tomllib.loads(text)) == len(dataclasses.fields(Settings)) - 1
    path = write(tmp_path, text)
    settings = load_settings(path, environ={})
    assert dataclasses.replace(settings, files=()) == Settings()


@pytest.mark.parametrize("text", ["8_750", "\uff18\uff17\uff15\uff10", "0x10", " "])
def test_integers_are_plain_ascii_digits(text: str) -> None:
    """int() accepts '8_750' and non-ASCII digits; a config value should not."""
    with pytest.raises(PushgodError) as caught:
        load_settings(environ={"PUSHGOD_SERVER_PORT": text})
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    assert "server.port" in caught.value.message
