"""A client's first look at the proxy, with the official MCP Python SDK: initialize, the first
tools/list, and an immediate call — what one-shot clients and clients that cache their tool list
see right after the proxy starts.

Usage: first_look.py TOOL stdio PROXY_BINARY CONFIG_FILE DATA_DIR
       first_look.py TOOL http URL
Calls TOOL with {"message": "first"}. Prints one JSON object with what it saw; the Rust tests
check it. Exits non-zero on any failure.
"""

import asyncio
import contextlib
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


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
    tool = sys.argv[1]
    seen = {}
    async with contextlib.AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(transport(sys.argv[2:]))
        session = await stack.enter_async_context(ClientSession(read, write))
        init = await session.initialize()
        seen["instructions"] = init.instructions
        seen["capabilities"] = init.capabilities.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        seen["tools"] = [tool.name for tool in (await session.list_tools()).tools]
        answer = await session.call_tool(tool, {"message": "first"})
        seen["call"] = answer.content[0].text
        seen["is_error"] = bool(answer.is_error)
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
