"""pushgod: self-hosted push and device-status daemon."""

__version__ = "0.1.0"
