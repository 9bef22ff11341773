"""Drives the proxy's Streamable HTTP endpoint with the official MCP Python SDK client.

Usage: python_sdk_http_client.py URL
Prints one JSON object with what it saw; the Rust test checks it. Exits non-zero on any failure.
"""

import asyncio
import json
import sys

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the python http client"),
        model="python-test-model",
        stop_reason="endTurn",
    )


async def main() -> None:
    url = sys.argv[1]
    seen = {}
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    async with streamable_http_client(url) as (read, write):
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
            echo = await session.call_tool("demo__echo", {"message": "from python over http"})
            seen["echo"] = echo.content[0].text
            sampled = await session.call_tool("demo__test_sampling", {"prompt": "hi"})
            seen["sampling"] = sampled.content[0].text
            await session.call_tool(
                "demo__test_tool_with_progress", {}, progress_callback=on_progress
            )
            seen["progress"] = progress
            prompt = await session.get_prompt("demo__test_simple_prompt", {})
            seen["prompt_messages"] = len(prompt.messages)
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
