"""The docs that are generated from code say what the code does."""

from __future__ import annotations

import json
from pathlib import Path

from pushgod.cli.reference import render

ROOT = Path(__file__).parent.parent


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == render(), "docs/cli.md is stale: make docs"


def test_mcp_client_examples_name_pushgods_endpoint() -> None:
    """contrib/claude: each file is JSON an MCP client reads, pointing at /mcp or the bridge."""
    examples = sorted((ROOT / "contrib" / "claude").glob("*.json"))
    assert examples
    for path in examples:
        servers = json.loads(path.read_text())["mcpServers"]
        for server in servers.values():
            target = server.get("url") or " ".join([server["command"], *server.get("args", [])])
            assert "/mcp" in target or "mcp-channel" in target, path.name


def test_every_mcp_tool_is_documented() -> None:
    from pushgod.mcp.tools import TOOLS

    page = (ROOT / "docs" / "mcp.md").read_text()
    for tool in TOOLS:
        assert f"`{tool.name}`" in page, tool.name
