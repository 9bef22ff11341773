"""Captures the tools/list answers of real MCP servers for the tool-search benchmark's catalog.

Usage (from the repository's root, with the official MCP Python SDK that scripts/test-deps.sh
installs):
    .deps/venv/bin/python benches/tool_search/capture.py install [SERVER...]
    .deps/venv/bin/python benches/tool_search/capture.py capture [SERVER...]

`install` puts each server of servers.json, at its pinned version, into .deps/tool_search/
(npm packages with `npm install --prefix`, PyPI packages in a virtualenv of their own). `capture`
starts each one over stdio with the SDK's client, lists its tools page by page, and writes the
answers as the server sent them (the raw JSON-RPC results, tapped below the SDK's parsing) to
catalog/<server>.json with the package, its version, the command run and the date. With no
SERVER, every server of servers.json. A server that fails is reported and skipped; the exit
status is non-zero if any did.
"""

import asyncio
import contextlib
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.message import SessionMessage
from mcp.types import PaginatedRequestParams
from mcp.types.jsonrpc import JSONRPCResponse

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEPS = ROOT / ".deps" / "tool_search"
# A server that lists nothing within this long is stuck (waiting on a network service, say).
LIST_TIMEOUT_SECS = 120
# A runaway server's pagination ends here.
MAX_PAGES = 50


def manifest():
    return json.loads((HERE / "servers.json").read_text())["servers"]


def install_dir(entry):
    return DEPS / entry["registry"] / entry["server"]


def executable(entry):
    if entry["registry"] == "npm":
        return install_dir(entry) / "node_modules" / ".bin" / entry["bin"]
    return install_dir(entry) / "bin" / entry["bin"]


def install(entry):
    target = install_dir(entry)
    if executable(entry).exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Browser builds come from outside the package registries: the servers list their tools
    # without a browser, so none is downloaded.
    env["PUPPETEER_SKIP_DOWNLOAD"] = "1"
    env["PUPPETEER_SKIP_CHROMIUM_DOWNLOAD"] = "1"
    env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    if entry["registry"] == "npm":
        spec = f"{entry['package']}@{entry['version']}"
        command = ["npm", "install", "--no-audit", "--no-fund", "--save-exact"]
        subprocess.run([*command, "--prefix", str(target), spec], check=True, env=env)
    else:
        python = entry.get("python", "python3")
        subprocess.run([python, "-m", "venv", str(target)], check=True, env=env)
        pip = [str(target / "bin" / "pip"), "install", "--disable-pip-version-check"]
        spec = f"{entry['package']}=={entry['version']}"
        # `with`: pins for dependencies that a package leaves open and a newer release broke.
        subprocess.run([*pip, "--quiet", spec, *entry.get("with", [])], check=True, env=env)


def substitute(value, work):
    return value.replace("{work}", str(work))


def shown_command(entry):
    """The command as a person would type it, with the dummy environment in front."""
    if entry["registry"] == "npm":
        runner = ["npx", "-y", f"{entry['package']}@{entry['version']}"]
    else:
        pins = [arg for pin in entry.get("with", []) for arg in ("--with", pin)]
        spec = f"{entry['package']}=={entry['version']}"
        runner = ["uvx", *pins, "--from", spec, entry["bin"]]
    env = [f"{key}={value}" for key, value in sorted(entry.get("env", {}).items())]
    return " ".join([*env, *runner, *entry.get("args", [])])


async def list_tools(entry, work):
    """Runs the server; returns its serverInfo, the raw tools/list pages, and SDK refusals."""
    env = {key: substitute(value, work) for key, value in entry.get("env", {}).items()}
    # Keep PATH and HOME (the SDK passes only a safe subset of the environment otherwise).
    env.setdefault("PATH", os.environ["PATH"])
    env.setdefault("HOME", str(work / "home"))
    # Python servers that write a set into a schema (mcp-atlassian's default field lists) would
    # order it differently on each run.
    env.setdefault("PYTHONHASHSEED", "0")
    params = StdioServerParameters(
        command=str(executable(entry)),
        args=[substitute(arg, work) for arg in entry.get("args", [])],
        env=env,
        cwd=str(work),
    )
    pages = []
    rejected = []
    stderr = open(work / "stderr.log", "w")
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(stderr.close)
        read, write = await stack.enter_async_context(stdio_client(params, errlog=stderr))
        # The SDK parses and filters results; the tap keeps each tools/list result as sent.
        tapped_send, tapped_read = anyio.create_memory_object_stream(0)
        listing_ids = set()

        async def tap():
            async with tapped_send:
                async for message in read:
                    if isinstance(message, SessionMessage):
                        inner = message.message
                        if isinstance(inner, JSONRPCResponse) and inner.id in listing_ids:
                            pages.append(inner.result)
                    await tapped_send.send(message)

        tapped_write, outgoing = anyio.create_memory_object_stream(0)

        async def note_listings():
            async with write, outgoing:
                async for message in outgoing:
                    inner = message.message
                    if getattr(inner, "method", None) == "tools/list":
                        listing_ids.add(inner.id)
                    await write.send(message)

        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)
        group.start_soon(tap)
        group.start_soon(note_listings)
        session = await stack.enter_async_context(ClientSession(tapped_read, tapped_write))
        with anyio.fail_after(LIST_TIMEOUT_SECS):
            init = await session.initialize()
            server_info = init.server_info.model_dump(mode="json", by_alias=True, exclude_none=True)
            cursor = None
            for _ in range(MAX_PAGES):
                params = PaginatedRequestParams(cursor=cursor) if cursor else None
                before = len(pages)
                try:
                    await session.list_tools(params=params)
                except Exception as error:
                    # The SDK refuses what the MCP schema does not allow (an inputSchema without
                    # `type`, say); the raw page is kept all the same, as other clients take it.
                    if len(pages) == before:
                        raise
                    rejected.append(innermost(error).splitlines()[0])
                cursor = pages[-1].get("nextCursor")
                if not cursor:
                    break
            else:
                raise RuntimeError(f"more than {MAX_PAGES} pages of tools")
    return server_info, pages, rejected


def innermost(error):
    """The first leaf of an exception group, which is what went wrong."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


def capture(entry, date):
    with tempfile.TemporaryDirectory(prefix=f"toolcat-{entry['server']}-") as scratch:
        work = pathlib.Path(scratch)
        (work / "home").mkdir()
        try:
            server_info, pages, rejected = asyncio.run(list_tools(entry, work))
        except BaseException as error:
            log = (work / "stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{innermost(error)}\n--- stderr ---\n{log}") from None
    if not pages or not any(page.get("tools") for page in pages):
        raise RuntimeError("the server listed no tools")
    record = {
        "server": entry["server"],
        "registry": entry["registry"],
        "package": entry["package"],
        "version": entry["version"],
        "command": shown_command(entry),
        "captured": date,
        "serverInfo": server_info,
        "pages": pages,
    }
    if rejected:
        record["sdkRejected"] = rejected
    out = HERE / "catalog" / f"{entry['server']}.json"
    out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return sum(len(page.get("tools", [])) for page in pages)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("install", "capture"):
        raise SystemExit(__doc__)
    wanted = set(sys.argv[2:])
    entries = [entry for entry in manifest() if not wanted or entry["server"] in wanted]
    unknown = wanted - {entry["server"] for entry in entries}
    if unknown:
        raise SystemExit(f"no such server in servers.json: {', '.join(sorted(unknown))}")
    date = os.environ.get("CAPTURE_DATE", datetime.date.today().isoformat())
    failed = []
    for entry in entries:
        try:
            if sys.argv[1] == "install":
                install(entry)
                print(f"{entry['server']}: installed", file=sys.stderr)
            else:
                count = capture(entry, date)
                print(f"{entry['server']}: {count} tools", file=sys.stderr)
        except Exception as error:
            failed.append(entry["server"])
            print(f"{entry['server']}: FAILED {error}", file=sys.stderr)
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed (Node.js)")
    main()
