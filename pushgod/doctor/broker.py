"""The MQTT broker, when `mqtt.enabled`: reachable, pushgod's login works, dynamic security.

Connections use the TLS context of the bridge and provisioning (mqtt/tls.py); the
dynamic-security probe is provisioning's own (`open_accounts`, which only lists roles).
The login is tried under a client id of its own: the bridge's would take over, and end,
the running daemon's persistent session.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl

import aiomqtt

from pushgod.config import MqttSettings, Settings
from pushgod.doctor.report import Check, Status, failed, passed, reason, skipped, warned
from pushgod.model.errors import PushgodError
from pushgod.mqtt.accounts import CONTROL, DynsecAccounts, open_accounts
from pushgod.mqtt.tls import tls_context

START_FIX = (
    "start the broker (sudo systemctl start mosquitto), or set mqtt.host and mqtt.port to "
    "where it listens"
)
TLS_PORT_FIX = (
    "the broker does not speak TLS there: set mqtt.port to its TLS listener (usually 8883), "
    "or mqtt.tls = false"
)
REFUSED_LOGIN = {4, 5, 134, 135}
"""CONNACK codes for a bad user name or password, or not authorized (MQTT 3.1.1 and 5)."""


async def broker_checks(settings: Settings, timeout_s: float) -> list[Check]:
    mqtt = settings.mqtt
    if not mqtt.enabled:
        return [
            skipped(name, "not checked: mqtt.enabled is false")
            for name in ("mqtt_broker", "mqtt_login", "mqtt_dynsec")
        ]
    reach = await reachable_check(mqtt, timeout_s)
    if reach.status is Status.FAIL:
        return [
            reach,
            skipped("mqtt_login", "not checked: the broker is unreachable"),
            skipped("mqtt_dynsec", "not checked: the broker is unreachable"),
        ]
    login = await login_check(mqtt, timeout_s)
    return [reach, login, await dynsec_check(settings, login, timeout_s)]


async def reachable_check(mqtt: MqttSettings, timeout_s: float) -> Check:
    """A TCP connection, and the TLS handshake with `mqtt.tls`."""
    name, where = "mqtt_broker", f"{mqtt.host}:{mqtt.port}"
    tls = tls_context(mqtt)
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(
                mqtt.host, mqtt.port, ssl=tls, server_hostname=mqtt.host if tls else None
            )
    except TimeoutError:
        return failed(name, f"{where} did not answer within {timeout_s:g} s", START_FIX)
    except ssl.SSLCertVerificationError as error:
        return failed(
            name,
            f"the TLS certificate of {where} is not trusted: {error.verify_message}",
            "set mqtt.ca_file to the CA certificate that signed the broker's, and mqtt.host "
            "to a name the certificate holds",
        )
    except (ssl.SSLError, ConnectionResetError) as error:
        if tls is None:
            return failed(name, f"cannot connect to {where}: {error}", START_FIX)
        return failed(name, f"the TLS handshake with {where} failed: {error}", TLS_PORT_FIX)
    except socket.gaierror as error:
        return failed(
            name,
            f"cannot resolve {mqtt.host}: {error.strerror}",
            "set mqtt.host to the broker's name or address",
        )
    except OSError as error:
        return failed(name, f"cannot connect to {where}: {reason(error)}", START_FIX)
    writer.transport.abort()
    secured = " with TLS" if tls else ""
    return passed(name, f"{where} accepts connections{secured}")


async def login_check(mqtt: MqttSettings, timeout_s: float) -> Check:
    """pushgod's account (mqtt.username, mqtt.password) is accepted."""
    name, who = "mqtt_login", f"{mqtt.username!r}" if mqtt.username else "anonymous"
    client = aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=mqtt.username or None,
        password=mqtt.password or None,
        identifier=f"pushgod-doctor-{secrets.token_hex(4)}",
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=timeout_s,
        tls_context=tls_context(mqtt),
    )
    # paho connects in a thread aiomqtt cannot cancel; this bounds how long it blocks.
    client._client.connect_timeout = timeout_s
    try:
        async with asyncio.timeout(timeout_s), client:
            pass
    except aiomqtt.MqttCodeError as error:
        code = getattr(error.rc, "value", error.rc)
        if code in REFUSED_LOGIN:
            without = "" if mqtt.password else " without a password"
            return failed(
                name,
                f"the broker refused {who}{without}: {error}",
                "set mqtt.username and mqtt.password to an account the broker accepts (with "
                "dynamic security: mosquitto_ctrl -u ADMIN dynsec createClient "
                f"{mqtt.username or 'pushgod'}, then addClientRole)",
            )
        return failed(name, f"the broker refused {who}: {error}", "see the broker's log")
    except (aiomqtt.MqttError, TimeoutError) as error:
        reason = str(error) or f"no answer within {timeout_s:g} s"
        return failed(
            name,
            f"no MQTT session as {who}: {reason}",
            f"check that {mqtt.host}:{mqtt.port} is an MQTT broker (mqtt.tls on a TLS port), "
            "and see its log",
        )
    return passed(name, f"the broker accepts {who}")


async def dynsec_check(settings: Settings, login: Check, timeout_s: float) -> Check:
    """With provisioning dynsec or auto: the admin account can use the dynsec plugin."""
    name, mqtt = "mqtt_dynsec", settings.mqtt
    if mqtt.provisioning == "files":
        return skipped(name, "not checked: mqtt.provisioning is files")
    if not mqtt.admin_username and login.status is Status.FAIL:
        return skipped(name, "not checked: pushgod's account, also the admin one, cannot log in")
    account = mqtt.admin_username or mqtt.username
    admin = repr(account)
    fix = (
        "load Mosquitto's dynamic security plugin and give the account the admin role "
        f"(mosquitto_ctrl -u ADMIN dynsec addClientRole {account} admin), or set "
        "mqtt.admin_username and mqtt.admin_password to the dynsec admin account"
    )
    unusable = f"{admin} cannot use the dynamic security plugin"
    try:
        async with asyncio.timeout(timeout_s):
            async with open_accounts(mqtt, settings.data_dir) as accounts:
                usable = isinstance(accounts, DynsecAccounts)
    except PushgodError as error:
        return failed(name, error.message, fix)
    except TimeoutError:
        usable = False
        unusable += f" (no answer on {CONTROL} within {timeout_s:g} s)"
    if usable:
        return passed(name, f"{admin} can manage device accounts with dynamic security")
    if mqtt.provisioning == "dynsec":
        return failed(name, unusable, fix)
    return warned(
        name,
        f"{unusable}: `pushgod device` writes files instead",
        f'{fix}; or set mqtt.provisioning = "files" and include pushgod\'s password_file '
        "and acl_file in mosquitto.conf",
    )
