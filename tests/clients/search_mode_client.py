"""Drives a proxy in search mode (`--tool-exposure search`) with the official MCP Python SDK:
lists, searches, describes, calls through pluggedin_call_tool (a result, a tool error, progress,
sampling, elicitation, an unknown tool), activates a tool and waits for list_changed.

Usage: search_mode_client.py stdio PROXY_BINARY CONFIG_FILE DATA_DIR
       search_mode_client.py http URL
Prints one JSON object with what it saw; the Rust tests check it. Exits non-zero on any failure.
"""

import asyncio
import contextlib
import json
import sys

import anyio

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# A test's bound on any one wait, below the Rust test's own.
WAIT = 20


async def sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the python client"),
        model="python-test-model",
        stop_reason="endTurn",
    )


async def elicitation(context, params):
    return types.ElicitResult(
        action="accept",
        content={
            "username": "python",
            "email": "python@example.com",
            "name": "Python",
            "age": 30,
            "confirmed": True,
            "answer": "python",
        },
    )


def transport(args):
    if args[0] == "stdio":
        proxy, config, data_dir = args[1:4]
        params = StdioServerParameters(
            command=proxy,
            args=["--config", config, "--data-dir", data_dir, "--tool-exposure", "search"],
        )
        return stdio_client(params)
    if args[0] == "http":
        return streamable_http_client(args[1])
    raise SystemExit(f"unknown transport {args[0]!r}")


def meta_call(name, arguments):
    return {"name": name, "arguments": arguments}


async def main() -> None:
    seen = {}
    progress = []
    tools_changed = anyio.Event()

    async def on_progress(value, total, message):
        progress.append(value)

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            tools_changed.set()

    async with contextlib.AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(transport(sys.argv[1:]))
        session = await stack.enter_async_context(
            ClientSession(
                read,
                write,
                sampling_callback=sampling,
                elicitation_callback=elicitation,
                message_handler=on_message,
            )
        )
        await session.initialize()
        seen["listed"] = [tool.name for tool in (await session.list_tools()).tools]

        found = await session.call_tool("pluggedin_search_tools", {"query": "echo the message back"})
        seen["found"] = [tool["name"] for tool in found.structured_content["tools"]]
        described = await session.call_tool("pluggedin_describe_tools", {"names": ["demo__echo"]})
        seen["described"] = described.structured_content["tools"][0]

        echo = await session.call_tool(
            "pluggedin_call_tool", meta_call("demo__echo", {"message": "from python"})
        )
        seen["echo"] = echo.content[0].text
        failed = await session.call_tool(
            "pluggedin_call_tool", meta_call("demo__test_error_handling", {})
        )
        seen["error"] = failed.is_error
        await session.call_tool(
            "pluggedin_call_tool",
            meta_call("demo__test_tool_with_progress", {}),
            progress_callback=on_progress,
        )
        seen["progress"] = progress
        sampled = await session.call_tool(
            "pluggedin_call_tool", meta_call("demo__test_sampling", {"prompt": "hi"})
        )
        seen["sampling"] = sampled.content[0].text
        elicited = await session.call_tool(
            "pluggedin_call_tool", meta_call("demo__test_elicitation", {"message": "who?"})
        )
        seen["elicitation"] = elicited.content[0].text
        try:
            await session.call_tool("pluggedin_call_tool", meta_call("demo__missing", {}))
            seen["unknown"] = "no error"
        except MCPError as error:
            seen["unknown"] = {"code": error.code, "message": error.message}

        await session.call_tool("pluggedin_activate_tools", {"names": ["demo__echo"]})
        with anyio.fail_after(WAIT):
            await tools_changed.wait()
        seen["list_changed"] = True
        listed = [tool.name for tool in (await session.list_tools()).tools]
        seen["activated_listed"] = listed[-1] == "demo__echo"
        direct = await session.call_tool("demo__echo", {"message": "activated"})
        seen["direct"] = direct.content[0].text
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
