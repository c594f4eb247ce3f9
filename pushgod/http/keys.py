"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from aiohttp import web

from pushgod.config import Settings
from pushgod.service.services import Services

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
REQUEST_ID = web.RequestKey("request_id", str)
CHANNEL_ID = web.RequestKey("channel_id", str)
"""The channel a request named, once parsed: logged with the request's failure."""
