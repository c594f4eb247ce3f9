"""MCP: the SDK's server behind /mcp, served from aiohttp."""
