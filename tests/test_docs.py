"""The docs that are generated from code say what the code does."""

from __future__ import annotations

from pathlib import Path

from pushgod.cli.reference import render

ROOT = Path(__file__).parent.parent


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == render(), "docs/cli.md is stale: make docs"
