"""The TLS context of pushgod's connections to the broker: bridge, provisioning, doctor."""

from __future__ import annotations

import ssl

from pushgod.config import MqttSettings


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """None without `mqtt.tls`; else one that verifies the broker's certificate and name
    against `mqtt.ca_file`, or the system's trusted certificates when that is empty."""
    if not settings.tls:
        return None
    return ssl.create_default_context(cafile=settings.ca_file or None)
