"""A minimal MCP server over stdio that misbehaves on request: its one tool, `flood`, writes
`lines` lines of garbage to stdout (between protocol messages) and `stderr_lines` lines of
`stderr_width` bytes to stderr, then answers. Standard library only.
"""

import json
import sys


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


FLOOD = {
    "name": "flood",
    "description": "Writes garbage to stdout and stderr, then answers",
    "inputSchema": {
        "type": "object",
        "properties": {
            "lines": {"type": "integer"},
            "stderr_lines": {"type": "integer"},
            "stderr_width": {"type": "integer"},
        },
    },
}


def flood(arguments):
    garbage = "this is not JSON-RPC, just noise from a broken server\n"
    out = sys.stdout
    for start in range(0, arguments.get("lines", 0), 1000):
        out.write(garbage * min(1000, arguments["lines"] - start))
    out.flush()
    line = "e" * max(1, arguments.get("stderr_width", 80)) + "\n"
    for _ in range(arguments.get("stderr_lines", 0)):
        sys.stderr.write(line)
    sys.stderr.flush()


for raw in sys.stdin:
    message = json.loads(raw)
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": ident, "result": {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "flood", "version": "1.0.0"},
        }})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": ident, "result": {"tools": [FLOOD]}})
    elif method == "tools/call":
        flood(message["params"].get("arguments") or {})
        send({"jsonrpc": "2.0", "id": ident, "result": {
            "content": [{"type": "text", "text": "flooded"}],
        }})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": ident, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": ident,
              "error": {"code": -32601, "message": f"method not found: {method}"}})
