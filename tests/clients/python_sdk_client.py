"""Drives the proxy with the official MCP Python SDK over stdio, as a third-party client would.

Usage: python_sdk_client.py PROXY_BINARY CONFIG_FILE DATA_DIR
Prints one JSON object with what it saw; the Rust test checks it. Exits non-zero on any failure.
"""

import asyncio
import json
import sys

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError


async def sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the python client"),
        model="python-test-model",
        stop_reason="endTurn",
    )


async def main() -> None:
    proxy, config, data_dir = sys.argv[1:4]
    params = StdioServerParameters(
        command=proxy, args=["--config", config, "--data-dir", data_dir]
    )
    seen = {}
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, sampling_callback=sampling) as session:
            init = await session.initialize()
            seen["server"] = init.server_info.name
            seen["protocol"] = init.protocol_version
            for _ in range(200):
                tools = [tool.name for tool in (await session.list_tools()).tools]
                if "demo__echo" in tools:
                    break
                await asyncio.sleep(0.05)
            seen["tools"] = tools
            echo = await session.call_tool("demo__echo", {"message": "from python"})
            seen["echo"] = echo.content[0].text
            sampled = await session.call_tool("demo__test_sampling", {"prompt": "hi"})
            seen["sampling"] = sampled.content[0].text
            await session.call_tool(
                "demo__test_tool_with_progress", {}, progress_callback=on_progress
            )
            seen["progress"] = progress
            try:
                await session.call_tool("demo__missing", {})
                seen["unknown"] = "no error"
            except MCPError as error:
                seen["unknown"] = {"code": error.code, "message": error.message}
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
