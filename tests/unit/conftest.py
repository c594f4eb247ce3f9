"""Hypothesis settings for the unit tests.

No deadline: speed is measured in bench/, never asserted in tests, and a busy machine must
not turn a slow example into a failure.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("pushgod-unit", deadline=None)
settings.load_profile("pushgod-unit")
