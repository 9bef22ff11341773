"""Drives the proxy with the official MCP Python SDK, as a third-party client would.

Usage: python_sdk_client.py stdio PROXY_BINARY CONFIG_FILE DATA_DIR
       python_sdk_client.py http URL
Prints one JSON object with what it saw; the Rust tests check it. Exits non-zero on any failure.
"""

import asyncio
import contextlib
import json
import sys

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the python client"),
        model="python-test-model",
        stop_reason="endTurn",
    )


def transport(args):
    if args[0] == "stdio":
        proxy, config, data_dir = args[1:4]
        params = StdioServerParameters(
            command=proxy, args=["--config", config, "--data-dir", data_dir]
        )
        return stdio_client(params)
    if args[0] == "http":
        return streamable_http_client(args[1])
    raise SystemExit(f"unknown transport {args[0]!r}")


async def main() -> None:
    seen = {}
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    async with contextlib.AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(transport(sys.argv[1:]))
        session = await stack.enter_async_context(
            ClientSession(read, write, sampling_callback=sampling)
        )
        init = await session.initialize()
        seen["server"] = init.server_info.name
        seen["protocol"] = init.protocol_version
        for _ in range(200):
            listed = (await session.list_tools()).tools
            tools = [tool.name for tool in listed]
            if "demo__echo" in tools:
                break
            await asyncio.sleep(0.05)
        seen["tools"] = tools
        # The tool's `_meta` and description as the SDK reads them (the config's hints, if any).
        echo_tool = next((tool for tool in listed if tool.name == "demo__echo"), None)
        if echo_tool is not None:
            seen["echo_meta"] = echo_tool.meta
            seen["echo_description"] = echo_tool.description
        echo = await session.call_tool("demo__echo", {"message": "from python"})
        seen["echo"] = echo.content[0].text
        sampled = await session.call_tool("demo__test_sampling", {"prompt": "hi"})
        seen["sampling"] = sampled.content[0].text
        await session.call_tool("demo__test_tool_with_progress", {}, progress_callback=on_progress)
        seen["progress"] = progress
        prompt = await session.get_prompt("demo__test_simple_prompt", {})
        seen["prompt_messages"] = len(prompt.messages)
        try:
            await session.call_tool("demo__missing", {})
            seen["unknown"] = "no error"
        except MCPError as error:
            seen["unknown"] = {"code": error.code, "message": error.message}
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
