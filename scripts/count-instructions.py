#!/usr/bin/env python3
"""What tracing costs a call, in instructions: the release proxy under
`valgrind --tool=callgrind`, over stdio and over Streamable HTTP, with tracing off and on (every
request sampled, spans exported over OTLP/HTTP to a sink in a process of its own).

Instructions are counted over the whole proxy process (every thread, the exporter's included;
not the demo server, a child process callgrind does not follow). Each figure is the difference
between a run of many calls and a run of fewer, divided by the difference in calls, so that
start-up, the first calls' warm-up and shutdown cancel out. Calls are sequential, one client, the
demo server's echo tool; the demo server traces nothing of its own (`OTEL_SDK_DISABLED`).

    scripts/count-instructions.py                      # stdio and HTTP, off and on, 3 pairs each
    scripts/count-instructions.py --transports stdio --repeat 1
    scripts/count-instructions.py --proxy PATH         # another build of the proxy
    scripts/count-instructions.py --cpu 20             # CPU time instead, stdio, 20 pairs

`--cpu` runs the proxy at full speed, without callgrind, and reads the CPU time of its every
thread (`/proc/<pid>/task/*/schedstat`) over 20,000 calls after 2,000 warm-up, tracing off and on
in alternating order: what the instructions leave out (the kernel's share, caches), with the
noise a shared machine adds to each run, which many pairs' median narrows. `--pin` (needs
`taskset` and two cores) keeps the proxy and its server on one core and the client and the sink
on the other, which narrows the spread of the pairs further.

Needs valgrind (`scripts/apt-install.sh valgrind`) and a release build
(`cargo build --release --bins`). Prints one line per pair of runs, then the medians and the
change tracing on makes against off: over the whole process, and without SQLite and what it
calls — the activity log's writes, whose number of transactions per call depends on how fast
calls come and so varies from run to run under callgrind (see `sqlite_instructions`); the proxy
runs as it always does, only the count leaves SQLite out. The change without SQLite is against
the whole call with tracing off (SQLite's share included), as a call costs.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOCOL_VERSION = "2025-06-18"
# The sink: reads each export's body and answers 200, nothing more per request; it runs in a
# process of its own, as a collector does, so its work is not the proxy's.
SINK = r"""
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        self.server.exports += 1
    def do_GET(self):
        body = str(self.server.exports).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
server.exports = 0
print(server.server_address[1], flush=True)
server.serve_forever()
"""
CALL_ARGUMENTS = {"message": "hello"}


def initialize_params():
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "count-instructions", "version": "1"},
    }


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def echo_tool(names):
    found = [name for name in names if name == "echo" or name.endswith("_echo")]
    if not found:
        raise RuntimeError(f"no echo tool in {names}")
    return min(found, key=len)


class Stdio:
    """Newline-delimited JSON-RPC over the proxy's stdin and stdout."""

    def __init__(self, process):
        self.process = process
        self.next_id = 0

    def send(self, message):
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{method}: the proxy closed stdout")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def notify(self, method):
        self.send({"jsonrpc": "2.0", "method": method})

    def close(self):
        self.process.stdin.close()


class Http:
    """One Streamable HTTP session on one keep-alive connection."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.session = None
        self.next_id = 0

    def post(self, message):
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        }
        if self.session:
            headers["mcp-session-id"] = self.session
            headers["mcp-protocol-version"] = PROTOCOL_VERSION
        self.connection.request("POST", "/mcp", json.dumps(message), headers)
        response = self.connection.getresponse()
        body = response.read().decode()
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}: {body}")
        self.session = response.getheader("mcp-session-id") or self.session
        if not body.strip():
            return None
        if not response.getheader("content-type", "").startswith("text/event-stream"):
            return json.loads(body)
        for line in body.splitlines():
            if line.startswith("data:"):
                try:
                    message = json.loads(line[5:])
                except ValueError:
                    continue
                if "id" in message and ("result" in message or "error" in message):
                    return message
        raise RuntimeError(f"no response in the SSE body: {body}")

    def request(self, method, params):
        self.next_id += 1
        message = self.post(
            {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        )
        if message is None or "error" in message:
            raise RuntimeError(f"{method}: {message}")
        return message["result"]

    def notify(self, method):
        self.post({"jsonrpc": "2.0", "method": method})

    def close(self):
        if self.session:
            self.connection.request("DELETE", "/mcp", headers={"mcp-session-id": self.session})
            self.connection.getresponse().read()
        self.connection.close()


def ready(client):
    """Initializes the session and waits for the echo tool; its name."""
    client.request("initialize", initialize_params())
    client.notify("notifications/initialized")
    deadline = time.monotonic() + 300
    while True:
        tools = client.request("tools/list", {}).get("tools", [])
        try:
            return echo_tool([tool["name"] for tool in tools])
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def call(client, tool):
    result = client.request("tools/call", {"name": tool, "arguments": CALL_ARGUMENTS})
    if result.get("isError"):
        raise RuntimeError(f"{tool} failed: {result}")


def total_instructions(path):
    """The instructions a callgrind output file counts in all."""
    with open(path) as out:
        for line in out:
            match = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if match:
                return int(match.group(1))
    raise RuntimeError(f"no totals in {path}")


def sqlite_instructions(path, proxy):
    """The instructions SQLite took, with what it called (the allocator, locks, copies): its
    functions are those of the proxy's binary with C names (no Rust path; not `main` nor the
    runtime's `_`-names). SQLite is the C the proxy links; on this path it runs only for the
    activity log's writes, whose number of transactions per call depends on how fast calls come
    (entries arriving within a short time share one), so under callgrind on a loaded machine it
    varies from run to run. Read from the callgrind file itself: each function's own cost, and
    the cost of each call from SQLite to outside it."""
    names, objects = {}, {}

    def named(table, text):
        # `(id) name` defines a compressed name, `(id)` alone uses it.
        match = re.match(r"\((\d+)\)(?: (.*))?$", text)
        if not match:
            return text
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table[match.group(1)]

    def is_sqlite(function, binary):
        return (
            binary == proxy and function is not None
            and "::" not in function and "<" not in function
            and function not in ("main", "(below main)")
            and not function.startswith(("_", "rust_", "0x"))
        )

    binary = function = callee_binary = callee = None
    inside = call = False
    total = 0
    with open(path) as out:
        for line in out:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                binary = named(objects, line[3:])
            elif line.startswith("fn="):
                function = named(names, line[3:])
                inside = is_sqlite(function, binary)
                callee_binary = None
            elif line.startswith("cob="):
                callee_binary = named(objects, line[4:])
            elif line.startswith("cfn="):
                callee = named(names, line[4:])
            elif line.startswith("calls="):
                call = True
            elif line[:1].isdigit() or line[:1] in ("+", "-", "*"):
                cost = int(line.split()[-1])
                if call:
                    # A call's line is the callee's whole cost: counted when it leaves SQLite
                    # (SQLite's own functions are counted by their own lines).
                    if inside and not is_sqlite(callee, callee_binary or binary):
                        total += cost
                    call = False
                    callee_binary = None
                elif inside:
                    total += cost
    return total


def run(args, work, transport, traced, calls, index):
    """One proxy under callgrind: `args.warmup` calls, then `calls`; its total instructions and
    SQLite's share of them."""
    config = os.path.join(work, "servers.json")
    data = tempfile.mkdtemp(prefix="data", dir=work)
    label = f"{transport}-{'on' if traced else 'off'}-{calls}-{index}"
    out = os.path.join(work, f"callgrind.{label}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    if traced:
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=args.sink,
            OTEL_TRACES_SAMPLER="always_on",
            # Batches fill (512 spans) before the delay passes, as under load.
            OTEL_BSP_SCHEDULE_DELAY="5000",
        )
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        args.proxy, "--config", config, "--data-dir", data, "--log-level", "warn",
    ]
    port = None
    if transport == "http":
        port = free_port()
        command += [
            "--transport", "streamable-http", "--port", str(port),
            "--rate-limit-tools", "0", "--rate-limit-requests", "0",
        ]
    log = open(os.path.join(work, f"{label}.log"), "wb")
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
    )
    try:
        if transport == "stdio":
            client = Stdio(process)
        else:
            deadline = time.monotonic() + 300
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the proxy did not listen (log: {log.name})")
                    time.sleep(0.2)
            client = Http(port)
        tool = ready(client)
        for _ in range(args.warmup + calls):
            call(client, tool)
        client.close()
        if transport == "http":
            process.terminate()
        process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    return total_instructions(out), sqlite_instructions(out, args.proxy)


def cpu_nanos(pid):
    """The CPU time every thread of process `pid` has run, in nanoseconds (schedstat)."""
    total = 0
    for thread in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{thread}/schedstat") as schedstat:
            total += int(schedstat.read().split()[0])
    return total


def cpu_run(args, work, traced):
    """One proxy at full speed over stdio: its CPU (every thread) per call, in microseconds,
    over `args.cpu_calls` calls after 2,000 warm-up calls."""
    config = os.path.join(work, "servers.json")
    data = tempfile.mkdtemp(prefix="data", dir=work)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    if traced:
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=args.sink, OTEL_TRACES_SAMPLER="always_on")
    pin = ["taskset", "-c", "1"] if args.pin else []
    process = subprocess.Popen(
        [*pin, args.proxy, "--config", config, "--data-dir", data, "--log-level", "warn"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        client = Stdio(process)
        tool = ready(client)
        for _ in range(2000):
            call(client, tool)
        before = cpu_nanos(process.pid)
        for _ in range(args.cpu_calls):
            call(client, tool)
        spent = cpu_nanos(process.pid) - before
        client.close()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return spent / args.cpu_calls / 1000


def cpu_pairs(args, work):
    """`args.cpu` pairs of stdio runs at full speed, tracing off and on, in alternating order:
    the median CPU per call of each and the median of each pair's change."""
    off, on = [], []
    for index in range(args.cpu):
        order = (False, True) if index % 2 == 0 else (True, False)
        for traced in order:
            (on if traced else off).append(cpu_run(args, work, traced))
        print(f"stdio CPU pair {index}: off {off[-1]:.2f} µs a call, on {on[-1]:.2f}", flush=True)
    changes = [100 * (b - a) / a for a, b in zip(off, on)]
    print()
    print("| transport | count | tracing off, per call | tracing on, per call | change |")
    print("|---|---|---:|---:|---:|")
    print(
        f"| stdio | CPU, µs | {statistics.median(off):.2f} | {statistics.median(on):.2f} "
        f"| {statistics.median(changes):+.1f}% (pairs from {min(changes):+.1f}% "
        f"to {max(changes):+.1f}%) |"
    )


def start_sink(work):
    process = subprocess.Popen(
        [sys.executable, "-c", SINK], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def exports(sink):
    connection = http.client.HTTPConnection(sink.removeprefix("http://"), timeout=10)
    connection.request("GET", "/")
    count = int(connection.getresponse().read())
    connection.close()
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", default=os.path.join(ROOT, "target/release/pluggedin-mcp-proxy"))
    parser.add_argument("--demo", help="the demo server (default: beside the proxy)")
    parser.add_argument("--transports", default="stdio,http")
    parser.add_argument("--short", type=int, default=500, help="calls in the short run")
    parser.add_argument("--long", type=int, default=2500, help="calls in the long run")
    parser.add_argument("--warmup", type=int, default=100, help="calls before either")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs per variant")
    parser.add_argument("--work", help="where the runs' files go (default: a temporary dir)")
    parser.add_argument(
        "--cpu", type=int, metavar="PAIRS",
        help="instead: CPU time at full speed over stdio, no callgrind, PAIRS pairs of runs",
    )
    parser.add_argument("--cpu-calls", type=int, default=20000, help="calls a CPU run counts")
    parser.add_argument(
        "--pin", action="store_true",
        help="with --cpu: the proxy and its server on the second core (taskset), this script "
        "and the sink on the first, so that neither moves the other's threads",
    )
    args = parser.parse_args()
    if args.pin:
        # Before the sink starts: it inherits the first core.
        os.sched_setaffinity(0, {0})
    args.proxy = os.path.abspath(args.proxy)
    demo = args.demo or os.path.join(os.path.dirname(args.proxy), "pluggedin-demo-server")
    work = args.work or tempfile.mkdtemp(prefix="count-instructions-")
    os.makedirs(work, exist_ok=True)
    server = {"command": demo, "args": ["--name", "demo"], "env": {"OTEL_SDK_DISABLED": "true"}}
    with open(os.path.join(work, "servers.json"), "w") as config:
        json.dump({"mcpServers": {"demo": server}}, config)
    sink, args.sink = start_sink(work)
    if args.cpu:
        print(f"proxy {args.proxy}; {args.cpu} pairs of {args.cpu_calls} calls at full speed")
    else:
        print(f"proxy {args.proxy}; {args.long} - {args.short} calls a pair; files in {work}")
    results = {}
    try:
        if args.cpu:
            cpu_pairs(args, work)
            return
        for transport in args.transports.split(","):
            for index in range(args.repeat):
                # Off and on side by side in each repeat.
                for traced in (False, True):
                    before = exports(args.sink)
                    short, short_sqlite = run(args, work, transport, traced, args.short, index)
                    long, long_sqlite = run(args, work, transport, traced, args.long, index)
                    calls = args.long - args.short
                    per_call = (long - short) / calls
                    sqlite = (long_sqlite - short_sqlite) / calls
                    results.setdefault((transport, traced), []).append(per_call)
                    results.setdefault((transport, traced, "rest"), []).append(per_call - sqlite)
                    if traced and exports(args.sink) == before:
                        raise RuntimeError("tracing on, but no span reached the sink")
                    print(
                        f"{transport:5} tracing {'on ' if traced else 'off'} pair {index}: "
                        f"{per_call:,.0f} instructions a call, {sqlite:,.0f} of them SQLite's",
                        flush=True,
                    )
    finally:
        sink.kill()
        sink.wait()
    print()
    print("| transport | count | tracing off, per call | tracing on, per call | change |")
    print("|---|---|---:|---:|---:|")
    for transport in args.transports.split(","):
        whole_off = results[(transport, False)]
        for count, rest in (("whole process", ()), ("without SQLite", ("rest",))):
            off = results[(transport, False, *rest)]
            on = results[(transport, True, *rest)]
            # Against the whole call with tracing off in both rows: what tracing adds to a call.
            changes = [100 * (b - a) / whole for a, b, whole in zip(off, on, whole_off)]
            print(
                f"| {transport} | {count} | {statistics.median(off):,.0f} "
                f"| {statistics.median(on):,.0f} | {statistics.median(changes):+.1f}% (pairs: "
                + ", ".join(f"{change:+.1f}%" for change in changes)
                + ") |"
            )

if __name__ == "__main__":
    main()
