"""The MCP server: the tools and resources on the SDK's low-level `Server`.

The low-level server, not `MCPServer`: tool schemas come from our wire schemas (the ones the
HTTP routes check and OpenAPI shows), and every failure becomes a tool error carrying the
`error_code` HTTP would answer, which `MCPServer`'s signature-derived tools cannot express.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    ResourceListChangedNotification,
    ServerCapabilities,
    TextContent,
    Tool,
    ToolAnnotations,
)

from pushgod import __version__
from pushgod.mcp import resources
from pushgod.mcp.caller import current_caller
from pushgod.mcp.tools import BY_NAME, TOOLS, check_arguments
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import compact_json
from pushgod.service.services import Services

log = logging.getLogger(__name__)

INSTRUCTIONS: Final = (
    "pushgod delivers notifications to its user's devices and keeps the state of their "
    "things. Send one-off alerts with pushgo.message.send, report long work as an Event "
    "(pushgo.event.create, then .update and .close with its event_id) and keep persistent "
    "objects such as a NAS or a sensor as Things (pushgo.thing.*). Read what is there "
    "with pushgo.thing.get|list, pushgo.event.get|list and pushgo.message.list. You act on "
    "the channels bound to you (pushgo.channel.list); to get another, call "
    "pushgo.channel.bind.start and give the user the bind_url. Never ask for a password."
)
RESOURCE_NOT_FOUND: Final = -32002
"""The JSON-RPC code MCP gives an unknown resource URI."""


class PushgodServer(Server[dict[str, Any]]):
    """Advertises `resources.listChanged` on the handshake era: the SDK's HTTP runner asks
    for the capabilities without notification options, which would leave it off."""

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> ServerCapabilities:
        return super().get_capabilities(
            notification_options or NotificationOptions(resources_changed=True),
            experimental_capabilities,
            extensions,
            protocol_version=protocol_version,
        )


def build(services: Services, *, underscored_names: bool) -> Server[dict[str, Any]]:
    """The MCP server over `services`; `underscored_names` lists `pushgo_message_send`."""
    schemas = {tool.name: tool.input_schema() for tool in TOOLS}
    listing = ListToolsResult(
        tools=[
            Tool(
                name=tool.underscored if underscored_names else tool.name,
                title=tool.title,
                description=tool.description,
                input_schema=schemas[tool.name],
                annotations=ToolAnnotations(
                    title=tool.title,
                    read_only_hint=tool.read_only,
                    destructive_hint=tool.destructive,
                    idempotent_hint=tool.idempotent or tool.read_only,
                    open_world_hint=False,
                ),
            )
            for tool in TOOLS
        ]
    )

    input_schemas = {name: schemas[tool.name] for name, tool in BY_NAME.items()}

    async def list_tools(
        ctx: ServerRequestContext[dict[str, Any]], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return listing

    async def on_call_tool(
        ctx: ServerRequestContext[dict[str, Any]], params: CallToolRequestParams
    ) -> CallToolResult:
        result = await call_tool(services, params)
        if not result.is_error and (result.structured_content or {}).get("resources_changed"):
            await _resources_changed(ctx)
        return result

    async def list_resources(
        ctx: ServerRequestContext[dict[str, Any]], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        try:
            return ListResourcesResult(resources=resources.listing(services, current_caller()))
        except PushgodError as error:
            raise _mcp_error(error) from None

    async def list_templates(
        ctx: ServerRequestContext[dict[str, Any]], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(resource_templates=resources.TEMPLATES)

    async def read_resource(
        ctx: ServerRequestContext[dict[str, Any]], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        try:
            return await resources.read(services, current_caller(), str(params.uri))
        except PushgodError as error:
            raise _mcp_error(error) from None

    return PushgodServer(
        "pushgod",
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schemas.get,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


async def call_tool(services: Services, params: CallToolRequestParams) -> CallToolResult:
    """A `tools/call` for the caller of this task (`current_caller`), as both /mcp paths run it:
    the SDK's, and the direct one (mcp/direct.py). An unknown tool is a JSON-RPC error; a call
    that fails, a tool error carrying the `error_code` HTTP would answer."""
    tool = BY_NAME.get(params.name)
    if tool is None:
        raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
    try:
        arguments = check_arguments(tool, params.arguments)
        result = await tool.run(services, current_caller(), arguments)
    except PushgodError as error:
        log.info("MCP tool %s failed: %s", tool.name, error.code.value)
        return _tool_error(error)
    except Exception:
        log.exception("MCP tool %s raised", tool.name)
        return _tool_error(PushgodError(ErrorCode.INTERNAL_ERROR, "internal error"))
    return CallToolResult(
        content=[TextContent(type="text", text=compact_json(result))],
        structured_content=result,
    )


def _tool_error(error: PushgodError) -> CallToolResult:
    """A failure the model can read and act on, with the code HTTP would answer."""
    data = {"error_code": error.code.value, "error": error.message, "status": error.status}
    return CallToolResult(
        content=[TextContent(type="text", text=compact_json(data))],
        structured_content=data,
        is_error=True,
    )


def _mcp_error(error: PushgodError) -> MCPError:
    code = RESOURCE_NOT_FOUND if error.status == 404 else INVALID_PARAMS
    return MCPError(code, error.message, {"error_code": error.code.value})


async def _resources_changed(ctx: ServerRequestContext[dict[str, Any]]) -> None:
    """Tell the client its resource list changed, on this call's own stream: every
    handshake-era client reads that one, while a GET stream is optional. The 2026-07-28
    era has no such channel and drops it."""
    try:
        await ctx.session.send_notification(
            ResourceListChangedNotification(), related_request_id=ctx.request_id
        )
    except Exception as error:  # the call succeeded; a lost hint must not fail it
        log.debug("could not send resources/list_changed: %s", error)
