"""A minimal MCP server over stdio that writes its answers as literal text, to see what a proxy
relays byte for byte. Every line it receives is appended to the file named by its one argument.
Tools: `verbatim` answers with RESULT exactly as written here (odd spacing, a number no double
holds, a member no schema knows); `modern_shape` answers in the 2026-07-28 shape (a
`resultType`, structured output that is not an object); `hang` never answers; `deaf` never
answers and stops reading its stdin. The prompt `verbatim`, the resource `verbatim://doc` and
completions answer with PROMPT, RESOURCE and COMPLETION exactly as written here. Standard
library only.
"""

import json
import sys
import time

RECORD = sys.argv[1]

RESULT = ('{ "content" : [ {"type":"text","text":"verbatim \\u00e9"} ],'
          ' "x-vendor": {"big": 123456789012345678901234567890, "f": 1.50} }')
MODERN = '{"content":[],"structuredContent":["a","b"],"resultType":"complete"}'
PROMPT = ('{ "messages" : [ {"role":"user","content":{"type":"text","text":"prompt \\u00e9"}} ],'
          ' "x-vendor": 1.50 }')
RESOURCE = ('{ "contents" : [ {"uri":"verbatim://doc","text":"doc \\u00e9"} ],'
            ' "x-vendor": 123456789012345678901234567890 }')
COMPLETION = '{ "completion" : {"values":["a" , "b"],"total":2}, "x-vendor": 1.50 }'

TOOLS = [
    {"name": name, "description": description, "inputSchema": {"type": "object"}}
    for name, description in [
        ("verbatim", "Answers with a fixed result, written by hand"),
        ("modern_shape", "Answers in the 2026-07-28 result shape"),
        ("hang", "Never answers"),
        ("deaf", "Never answers, and stops reading its stdin"),
    ]
]


def send(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def answer(ident, result):
    send('{"jsonrpc":"2.0","id":' + json.dumps(ident) + ',"result":' + result + "}")


for raw in sys.stdin:
    with open(RECORD, "a", encoding="utf-8") as record:
        record.write(raw if raw.endswith("\n") else raw + "\n")
    message = json.loads(raw)
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        continue
    if method == "initialize":
        answer(ident, json.dumps({
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}, "prompts": {}, "resources": {}, "completions": {}},
            "serverInfo": {"name": "verbatim", "version": "1.0.0"},
        }))
    elif method == "tools/list":
        answer(ident, json.dumps({"tools": TOOLS}))
    elif method == "tools/call":
        name = message["params"]["name"]
        if name == "verbatim":
            answer(ident, RESULT)
        elif name == "modern_shape":
            answer(ident, MODERN)
        elif name == "deaf":
            while True:
                time.sleep(3600)
    elif method == "prompts/list":
        answer(ident, json.dumps({"prompts": [{"name": "verbatim", "arguments": [
            {"name": "who", "required": False}]}]}))
    elif method == "prompts/get":
        answer(ident, PROMPT)
    elif method == "resources/list":
        answer(ident, json.dumps({"resources": [{"uri": "verbatim://doc", "name": "doc"}]}))
    elif method == "resources/templates/list":
        answer(ident, json.dumps({"resourceTemplates": []}))
    elif method == "resources/read":
        answer(ident, RESOURCE)
    elif method == "completion/complete":
        answer(ident, COMPLETION)
    elif method == "ping":
        answer(ident, "{}")
    else:
        send('{"jsonrpc":"2.0","id":' + json.dumps(ident)
             + ',"error":{"code":-32601,"message":"method not found"}}')
