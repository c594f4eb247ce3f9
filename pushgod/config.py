"""The one Settings object: built-in defaults, then the TOML files, then the environment.

Every key is declared once below with its default, help text and parse rule; that table
drives loading, validation, `pushgod config example`, contrib/pushgod.toml and
docs/configuration.md. `os.environ` is read here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pushgod.model.channels import MAX_RETENTION_COUNT, MIN_RETENTION_AGE_MS
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.times import format_duration, parse_duration_ms

SYSTEM_CONFIG = Path("/etc/pushgod/pushgod.toml")
ENV_PREFIX = "PUSHGOD_"
CONFIG_ENV = "PUSHGOD_CONFIG"
DROP_IN_DIR = "conf.d"
"""Beside the config file: *.toml files read after it in name order. The .deb keeps its
generated secrets there, so the packaged pushgod.toml stays an unmodified conffile."""


@dataclass(frozen=True, slots=True)
class Key:
    """How one setting is documented and parsed."""

    help: str
    kind: str  # str, int, bool, duration, choice, url, clients
    aliases: tuple[str, ...] = ()
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None  # for a duration: in milliseconds
    maximum: int | None = None


def setting(default: Any, help: str, kind: str, **options: Any) -> Any:
    return field(default=default, metadata={"key": Key(help, kind, **options)})


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = setting(
        "127.0.0.1",
        "Address to listen on. Use 0.0.0.0 (or ::) to serve the LAN.",
        "str",
    )
    port: int = setting(
        8750,
        "TCP port to listen on; 0 picks a free one (reported in the log and to systemd).",
        "int",
        minimum=0,
        maximum=65535,
    )
    public_base_url: str = setting(
        "",
        "The URL clients reach pushgod at (https://push.example.net): the OAuth issuer and "
        "the base of links. Unset, each request's Host header is used.",
        "url",
        aliases=("PUSHGO_PUBLIC_BASE_URL",),
    )
    gateway_token: str = setting(
        "",
        "PushGo's legacy gateway token. When set, the send routes also require "
        "`Authorization: Bearer <this token>` (or a pushgod token) besides the channel password, "
        "and it opens /mcp in legacy mode (docs/mcp.md).",
        "str",
        aliases=("PUSHGO_TOKEN",),
        secret=True,
    )
    shutdown_timeout: int = setting(
        5_000,
        "How long a shutdown waits for requests in flight before closing them.",
        "duration",
    )


@dataclass(frozen=True, slots=True)
class StorageSettings:
    data_dir: str = setting(
        "var",
        "Directory holding the SQLite database (relative paths start at the working directory).",
        "str",
    )
    synchronous: str = setting(
        "full",
        "SQLite synchronous mode: full survives power loss; normal is faster and survives "
        "process crashes but may lose the last commits on power loss.",
        "choice",
        choices=("full", "normal"),
    )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    messages_per_channel: int = setting(
        10_000,
        "Messages kept per channel; older ones are deleted by the cleanup. A channel may "
        "set its own.",
        "int",
        minimum=1,
        maximum=MAX_RETENTION_COUNT,
    )
    message_age: int = setting(
        30 * 86_400_000,
        "How long messages are kept; a channel may set its own.",
        "duration",
        minimum=MIN_RETENTION_AGE_MS,
    )
    thing_history: int = setting(
        100, "Changes kept in each Thing's history.", "int", minimum=1, maximum=1_000_000
    )
    event_updates: int = setting(
        1_000,
        "Updates kept in each Event's list of updates (the oldest go first).",
        "int",
        minimum=1,
        maximum=1_000_000,
    )
    closed_event_age: int = setting(
        90 * 86_400_000,
        "How long a closed Event and its updates are kept.",
        "duration",
        minimum=1000,
    )
    cleanup_interval: int = setting(
        10 * 60_000, "How often expired and surplus data is deleted.", "duration", minimum=1000
    )


@dataclass(frozen=True, slots=True)
class StreamsSettings:
    keepalive: int = setting(
        25_000,
        "How often an idle stream (SSE, NDJSON, WebSocket) sends a keepalive, so that "
        "proxies keep it open.",
        "duration",
        minimum=1000,
    )
    buffer: int = setting(
        1_000,
        "Items a subscriber may fall behind before its stream is closed; the client then "
        "resumes from the last sequence number it saw.",
        "int",
        minimum=1,
        maximum=1_000_000,
    )


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    password_threads: int = setting(
        2,
        "Threads that hash and verify passwords (argon2id needs 32 MiB each).",
        "int",
        minimum=1,
        maximum=16,
    )
    failed_logins: int = setting(
        10,
        "Wrong passwords allowed per client address and channel within the window before "
        "answering 429.",
        "int",
        minimum=1,
    )
    failed_login_window: int = setting(
        10 * 60_000, "The window in which failed logins are counted.", "duration", minimum=1000
    )


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = setting(
        "info", "Log level.", "choice", choices=("debug", "info", "warning", "error")
    )


@dataclass(frozen=True, slots=True)
class McpSettings:
    enabled: bool = setting(
        False,
        "Serve MCP at /mcp, with the OAuth authorization server (/oauth/*, /.well-known/*) "
        "and the consent and channel-binding pages assistants send their user to.",
        "bool",
        aliases=("PUSHGO_MCP_ENABLED",),
    )
    allowed_hosts: str = setting(
        "",
        "Host names /mcp answers to, comma-separated (pushgod.local, nas.lan:8750; a name "
        "without a port matches any port); empty: any. Listing them guards against DNS "
        "rebinding from web pages.",
        "str",
    )
    allowed_origins: str = setting(
        "",
        "Browser origins besides pushgod's own that may call /mcp, comma-separated "
        "(http://localhost:6274 for MCP Inspector in direct mode).",
        "str",
    )
    underscored_tool_names: bool = setting(
        False,
        "List the MCP tools as pushgo_message_send rather than pushgo.message.send, for "
        "clients whose model APIs refuse dots in tool names. Calls by either name work.",
        "bool",
    )


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    registration: bool = setting(
        True,
        "Let OAuth clients register themselves (RFC 7591), as most MCP clients expect. "
        "Registering grants nothing: every authorization still needs a channel password.",
        "bool",
    )
    client_documents: bool = setting(
        True,
        "Accept an https URL as client_id and fetch the client's metadata document from it "
        "(Claude Code does this).",
        "bool",
    )
    client_documents_private_hosts: bool = setting(
        False,
        "Fetch client metadata documents from loopback and private addresses too. Off, a "
        "client_id cannot make pushgod probe your LAN.",
        "bool",
    )
    predefined_clients: str = setting(
        "",
        "Confidential OAuth clients known without registration, as 'id:secret;id2:secret2'. "
        "They may redirect to any https or loopback URI.",
        "clients",
        aliases=("PUSHGO_MCP_PREDEFINED_CLIENTS",),
        secret=True,
    )


@dataclass(frozen=True, slots=True)
class MqttSettings:
    enabled: bool = setting(
        False,
        "Connect to an MQTT broker: devices update their Things, pushgod publishes each "
        "Thing's state and Home Assistant discovery.",
        "bool",
    )
    host: str = setting("127.0.0.1", "The broker's host name or address.", "str")
    port: int = setting(
        1883, "The broker's port (8883 is usual with TLS).", "int", minimum=1, maximum=65535
    )
    tls: bool = setting(False, "Connect with TLS, verifying the broker's certificate.", "bool")
    ca_file: str = setting(
        "", "CA certificate file for TLS; empty: the system's trusted certificates.", "str"
    )
    username: str = setting("pushgod", "pushgod's own account on the broker.", "str")
    password: str = setting("", "The password of that account.", "str", secret=True)
    client_id: str = setting(
        "pushgod",
        "pushgod's MQTT client id; its persistent session keeps device updates that arrive "
        "while pushgod is down. Unique per pushgod instance on one broker.",
        "str",
    )
    root: str = setting(
        "pushgod", "The first topic level of every pushgod topic (pushgod/things/…).", "str"
    )
    ha_discovery: bool = setting(
        True, "Publish Home Assistant MQTT discovery for every Thing.", "bool"
    )
    ha_prefix: str = setting("homeassistant", "Home Assistant's discovery prefix.", "str")
    provisioning: str = setting(
        "auto",
        "How `pushgod device` gives devices broker accounts: dynsec (Mosquitto's dynamic "
        "security plugin), files (a password file and ACL file for the broker to include), "
        "or auto (dynsec when the admin account can use it, else files).",
        "choice",
        choices=("auto", "dynsec", "files"),
    )
    admin_username: str = setting(
        "",
        "The dynamic security admin account; empty: pushgod's own account (give it the "
        "admin role).",
        "str",
    )
    admin_password: str = setting("", "The admin account's password.", "str", secret=True)
    password_file: str = setting(
        "",
        "Mosquitto password file pushgod maintains in files mode; empty: "
        "<data_dir>/mosquitto/passwd.",
        "str",
    )
    acl_file: str = setting(
        "",
        "Mosquitto ACL file pushgod maintains in files mode; empty: <data_dir>/mosquitto/acl.",
        "str",
    )
    device_host: str = setting(
        "",
        "The broker address devices use, as printed by `pushgod device add`; empty: host.",
        "str",
    )


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    streams: StreamsSettings = field(default_factory=StreamsSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    log: LogSettings = field(default_factory=LogSettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    files: tuple[str, ...] = ()
    """The TOML files read, in order: the config file, then its drop-ins."""

    @property
    def source(self) -> str:
        return ", ".join(self.files) or "built-in defaults"

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)


SECTIONS: dict[str, type[Any]] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Settings)
    if f.name != "files"
}


def keys() -> Iterator[tuple[str, dataclasses.Field[Any], Key]]:
    """Every setting as (section, field, key) in declaration order."""
    for section, cls in SECTIONS.items():
        for item in dataclasses.fields(cls):
            yield section, item, item.metadata["key"]


def env_name(section: str, name: str) -> str:
    return f"{ENV_PREFIX}{section}_{name}".upper()


def config_error(name: str, origin: str, problem: str) -> PushgodError:
    return PushgodError(ErrorCode.INVALID_CONFIG, f"{name} (from {origin}): {problem}")


def _parse(value: object, key: Key) -> Any:
    """A value from TOML (typed) or the environment (text), or ValueError saying what is wrong."""
    if key.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if key.kind == "int":
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise ValueError(f"expected an integer, got {value!r}")
        if key.minimum is not None and number < key.minimum:
            raise ValueError(f"must be at least {key.minimum}, got {number}")
        if key.maximum is not None and number > key.maximum:
            raise ValueError(f"must be at most {key.maximum}, got {number}")
        return number
    if key.kind == "duration":
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError(f"must not be negative, got {value}")
            millis = value * 1000
        elif isinstance(value, str):
            try:
                millis = parse_duration_ms(value, "the value")
            except PushgodError as error:
                raise ValueError(error.message) from None
        else:
            raise ValueError(f"expected a duration like 30s, 10m or 30d, got {value!r}")
        if key.minimum is not None and millis < key.minimum:
            raise ValueError(f"must be at least {format_duration(key.minimum)}, got {value!r}")
        return millis
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    if key.kind == "choice" and value not in key.choices:
        raise ValueError(f"expected one of {', '.join(key.choices)}, got {value!r}")
    if key.kind == "url" and value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")
    if key.kind == "clients" and value:
        parse_clients(value)
    return value


def parse_clients(text: str) -> list[tuple[str, str]]:
    """'id:secret;id2:secret2' (or one per line) as pairs; ValueError without echoing secrets."""
    pairs = []
    for entry in text.replace("\n", ";").split(";"):
        if not entry.strip():
            continue
        client_id, sep, secret = entry.strip().partition(":")
        if not sep or not client_id or not secret:
            raise ValueError("expected 'client_id:secret' entries separated by ';'")
        pairs.append((client_id, secret))
    return pairs


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


def load_settings(
    explicit_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, str], object] | None = None,
) -> Settings:
    """Defaults < TOML file < its conf.d/*.toml < PUSHGO_* names < PUSHGOD_* names < CLI.

    Raises PushgodError(invalid_config) naming the key, where its value came from and
    what is wrong; secrets are never repeated in the message.
    """
    environ = os.environ if environ is None else environ
    path = config_path(explicit_path, environ)
    documents = [(str(file), _read_toml(file)) for file in _config_files(path)]
    known_env = {CONFIG_ENV}
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}

    for origin, document in documents:
        for section in document:
            if section not in SECTIONS or not isinstance(document[section], dict):
                raise config_error(section, origin, "unknown section")
            for name in document[section]:
                if name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
                    raise config_error(f"{section}.{name}", origin, "unknown key")

    for section, item, key in keys():
        label = f"{section}.{item.name}"
        candidates: list[tuple[str, object]] = [
            (origin, document[section][item.name])
            for origin, document in documents
            if item.name in document.get(section, {})
        ]
        for alias in key.aliases:
            known_env.add(alias)
            if alias in environ:
                candidates.append((alias, environ[alias]))
        name = env_name(section, item.name)
        known_env.add(name)
        if name in environ:
            candidates.append((name, environ[name]))
        if overrides and (section, item.name) in overrides:
            candidates.append(("the command line", overrides[(section, item.name)]))
        for origin, raw in candidates:
            try:
                values[section][item.name] = _parse(raw, key)
            except ValueError as error:
                problem = "invalid value" if key.secret else str(error)
                raise config_error(label, origin, problem) from None

    for name in environ:
        if name.startswith(ENV_PREFIX) and name not in known_env:
            raise config_error(name, "the environment", "unknown setting")

    sections = {section: SECTIONS[section](**values[section]) for section in SECTIONS}
    return Settings(**sections, files=tuple(origin for origin, _ in documents))


def _config_files(path: Path | None) -> list[Path]:
    """The config file, then its drop-ins; a missing conf.d is no error, an unreadable one is."""
    if path is None:
        return []
    drop_ins = path.parent / DROP_IN_DIR
    try:
        return [path, *sorted(drop_ins.glob("*.toml"))] if drop_ins.is_dir() else [path]
    except OSError as error:
        raise config_error("config file", str(drop_ins), error.strerror or str(error)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise config_error("config file", str(path), error.strerror or str(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise config_error("config file", str(path), f"not valid TOML: {error}") from None


def _toml_value(value: object, key: Key) -> str:
    if key.kind == "duration":
        assert isinstance(value, int)
        return f'"{format_duration(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def example_toml() -> str:
    """A fully commented configuration file listing every key at its default."""
    lines = [
        "# pushgod configuration (TOML). Every key is optional: shown here is its default.",
        "# Any key can also be set in the environment as PUSHGOD_<SECTION>_<KEY>,",
        "# e.g. PUSHGOD_SERVER_PORT=8750, which wins over this file.",
        "# Durations are written like 30s, 10m, 12h, 30d or 2w.",
        f"# Files in {DROP_IN_DIR}/ beside this one (*.toml, in name order) are read after it.",
    ]
    for section, cls in SECTIONS.items():
        lines += ["", f"[{section}]", ""]
        for item in dataclasses.fields(cls):
            key: Key = item.metadata["key"]
            lines += [f"# {line}" for line in textwrap.wrap(key.help, 88)]
            names = [env_name(section, item.name), *key.aliases]
            lines.append(f"# Environment: {', '.join(names)}")
            if key.choices:
                lines.append(f"# One of: {', '.join(key.choices)}")
            lines.append(f"#{item.name} = {_toml_value(item.default, key)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def markdown_reference() -> str:
    """docs/configuration.md: every key with its default, environment names and help."""
    lines = [
        "# Configuration",
        "",
        "pushgod reads one TOML file: the one given with `pushgod --config FILE`, else the",
        "one named by `PUSHGOD_CONFIG`, else `/etc/pushgod/pushgod.toml` when it exists, else",
        "it uses the built-in defaults. The `*.toml` files in a `conf.d/` directory beside that",
        "file are read after it, in name order (the .deb keeps its generated secrets in",
        "`/etc/pushgod/conf.d/secrets.toml`). Every key can be overridden in the environment",
        "by `PUSHGOD_<SECTION>_<KEY>`; PushGo's own variable names are honoured where they",
        "mean the same thing. Precedence, lowest first: defaults, the file, its drop-ins,",
        "PushGo's names, `PUSHGOD_*` names, command-line flags. An invalid value stops",
        "start-up with one line naming the key and what is wrong. `pushgod config example`",
        "prints a commented file (the same as `contrib/pushgod.toml`); `pushgod config check`",
        "validates the effective settings.",
        "",
        "Durations are written like `30s`, `10m`, `12h`, `30d` or `2w`;",
        "a bare integer is seconds.",
        "",
        "| key | default | environment | meaning |",
        "|---|---|---|---|",
    ]
    for section, item, key in keys():
        names = ", ".join(f"`{name}`" for name in [env_name(section, item.name), *key.aliases])
        default = _toml_value(item.default, key)
        lines.append(f"| `{section}.{item.name}` | `{default}` | {names} | {key.help} |")
    return "\n".join(lines) + "\n"


def effective(settings: Settings) -> dict[str, dict[str, object]]:
    """The settings as a TOML-like mapping with secrets replaced by '(set)' or ''."""
    result: dict[str, dict[str, object]] = {}
    for section, item, key in keys():
        value = getattr(getattr(settings, section), item.name)
        if key.secret:
            value = "(set)" if value else ""
        elif key.kind == "duration":
            value = format_duration(value)
        result.setdefault(section, {})[item.name] = value
    return result
