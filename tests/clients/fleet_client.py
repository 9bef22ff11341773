"""Drives a fleet of proxies through its load balancer with the official MCP Python SDK, one
session for the whole run, as a third-party client would.

Usage: fleet_client.py URL
Reads commands on stdin, one per line, and answers each with one JSON line on stdout:
  start          initialize and wait for demo__echo: {"tools": [...]}
  calls N        N calls of demo__echo: {"ok": n, "errors": [...]}
  sampling       demo__test_sampling, answered by this client: {"text": ...}
  progress       demo__test_tool_with_progress: {"progress": [...]}
  slow MS        starts demo__sleep for MS ms in the background: {"started": true}
  slow-result    waits for that call: {"ok": true} or {"error": ...}
  tool NAME JSON one call of NAME with the JSON arguments: {"text": ...} or {"error": ...}
  tools          the tools listed now: {"tools": [...]}
  await-change N waits until N tools/list_changed notifications arrived in all, then lists:
                 {"changes": n, "tools": [...]}
  quit
Exits non-zero on a failure outside a call.
"""

import asyncio
import contextlib
import json
import sys

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the fleet client"),
        model="python-test-model",
        stop_reason="endTurn",
    )


def say(value) -> None:
    print(json.dumps(value), flush=True)


async def call(session, tool, arguments, **options):
    try:
        result = await session.call_tool(tool, arguments, **options)
    except MCPError as error:
        return None, f"{error.code}: {error.message}"
    except Exception as error:  # noqa: BLE001 - the transport's failures are the test's data
        return None, f"{type(error).__name__}: {error}"
    if result.is_error:
        return None, result.content[0].text if result.content else "error without content"
    return result, None


class Changes:
    """Counts the tools/list_changed notifications the session received."""

    def __init__(self) -> None:
        self.count = 0
        self.arrived = asyncio.Condition()

    async def handle(self, message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            async with self.arrived:
                self.count += 1
                self.arrived.notify_all()

    async def wait_for(self, count: int) -> int:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: self.count >= count), 60)
            return self.count


async def tool_names(session) -> list:
    return [tool.name for tool in (await session.list_tools()).tools]


async def main() -> None:
    url = sys.argv[1]
    slow = None
    changes = Changes()
    async with contextlib.AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(streamable_http_client(url))
        session = await stack.enter_async_context(
            ClientSession(
                read, write, sampling_callback=sampling, message_handler=changes.handle
            )
        )
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            command, *args = line.split()
            if command == "start":
                await session.initialize()
                tools = []
                for _ in range(400):
                    tools = [tool.name for tool in (await session.list_tools()).tools]
                    if "demo__echo" in tools:
                        break
                    await asyncio.sleep(0.05)
                say({"tools": tools})
            elif command == "calls":
                ok, errors = 0, []
                for n in range(int(args[0])):
                    result, error = await call(session, "demo__echo", {"message": f"call {n}"})
                    if error is None and result.content[0].text == f"Echo: call {n}":
                        ok += 1
                    else:
                        errors.append(error or result.content[0].text)
                say({"ok": ok, "errors": errors})
            elif command == "sampling":
                result, error = await call(session, "demo__test_sampling", {"prompt": "hi"})
                say({"text": result.content[0].text} if error is None else {"error": error})
            elif command == "progress":
                progress = []

                async def on_progress(value, total, message):
                    progress.append(value)

                _, error = await call(
                    session, "demo__test_tool_with_progress", {}, progress_callback=on_progress
                )
                say({"progress": progress} if error is None else {"error": error})
            elif command == "slow":
                slow = asyncio.create_task(call(session, "demo__sleep", {"ms": int(args[0])}))
                say({"started": True})
            elif command == "slow-result":
                _, error = await slow
                say({"ok": True} if error is None else {"error": error})
            elif command == "tool":
                name, arguments = line.split(maxsplit=2)[1:]
                result, error = await call(session, name, json.loads(arguments))
                say({"text": result.content[0].text} if error is None else {"error": error})
            elif command == "tools":
                say({"tools": await tool_names(session)})
            elif command == "await-change":
                count = await changes.wait_for(int(args[0]))
                say({"changes": count, "tools": await tool_names(session)})
            elif command == "quit":
                break
            else:
                raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    asyncio.run(main())
