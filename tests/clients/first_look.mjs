// A client's first look at the proxy, with the official MCP TypeScript SDK: connect (initialize),
// the first tools/list, and an immediate call — what one-shot clients and clients that cache their
// tool list see right after the proxy starts.
//
// Usage: node first_look.mjs TOOL stdio PROXY_BINARY CONFIG_FILE DATA_DIR
//        node first_look.mjs TOOL http URL
// The SDK is the one scripts/test-deps.sh installed in .deps/npm. Calls TOOL with
// {"message": "first"}. Prints one JSON object with what it saw; exits non-zero on failure.
import { createRequire } from "node:module";

const [tool, mode, ...rest] = process.argv.slice(2);
const require = createRequire(new URL("../../.deps/npm/package.json", import.meta.url));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require(
  "@modelcontextprotocol/sdk/client/streamableHttp.js",
);

let transport;
if (mode === "stdio") {
  const [proxy, config, dataDir] = rest;
  transport = new StdioClientTransport({
    command: proxy,
    args: ["--config", config, "--data-dir", dataDir],
    stderr: "inherit",
  });
} else if (mode === "http") {
  transport = new StreamableHTTPClientTransport(new URL(rest[0]));
} else {
  throw new Error(`unknown transport ${mode}`);
}

const client = new Client({ name: "first-look", version: "1.0.0" });
await client.connect(transport);
const seen = {
  instructions: client.getInstructions() ?? null,
  capabilities: client.getServerCapabilities(),
};
seen.tools = (await client.listTools()).tools.map((listed) => listed.name);
const answer = await client.callTool({ name: tool, arguments: { message: "first" } });
seen.call = answer.content[0].text;
seen.is_error = Boolean(answer.isError);
await client.close();
console.log(JSON.stringify(seen));
