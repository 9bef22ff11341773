// A client on the official MCP TypeScript SDK (@modelcontextprotocol/sdk, installed into .deps/ by
// scripts/test-deps.sh) that drives the proxy over Streamable HTTP with roots, for the roots tests.
//
//   node ts_roots_client.mjs URL PLAN
//
// PLAN is a JSON array of steps, run in order; sessions are made on first use, each its own
// client with the `roots` capability (listChanged):
//   {"session": "a", "roots": [{"uri": "file:///…"}]}  set the session's roots (and, for a
//                                                     session already connected, send
//                                                     notifications/roots/list_changed)
//   {"session": "a", "call": "tool", "until": "text"}  call a tool (until its text contains
//                                                     "text", when given, within 20 s)
// Prints {"texts": [one per call], "asked": {session: roots/list requests answered}} on stdout.

import { createRequire } from "node:module";

const require = createRequire(new URL("../../.deps/npm/package.json", import.meta.url));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require(
  "@modelcontextprotocol/sdk/client/streamableHttp.js",
);
const { ListRootsRequestSchema } = require("@modelcontextprotocol/sdk/types.js");

const WAIT_MS = 20_000;
const [url, planText] = process.argv.slice(2);
const plan = JSON.parse(planText);

const sessions = new Map();
const asked = {};

async function session(name, roots) {
  const known = sessions.get(name);
  if (known) {
    return known;
  }
  const state = { roots: roots ?? [] };
  asked[name] = 0;
  const client = new Client(
    { name: `ts-roots-${name}`, version: "1.0.0" },
    { capabilities: { roots: { listChanged: true } } },
  );
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    asked[name] += 1;
    return { roots: state.roots };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  state.client = client;
  sessions.set(name, state);
  return state;
}

function textOf(result) {
  return (result.content ?? [])
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("\n");
}

const texts = [];
for (const step of plan) {
  if (step.roots) {
    const existing = sessions.get(step.session);
    if (existing) {
      existing.roots = step.roots;
      await existing.client.sendRootsListChanged();
    } else {
      await session(step.session, step.roots);
    }
    continue;
  }
  const { client } = await session(step.session);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const text = textOf(await client.callTool({ name: step.call, arguments: step.arguments ?? {} }));
    if (!step.until || text.includes(step.until)) {
      texts.push(text);
      break;
    }
    if (Date.now() > deadline) {
      throw new Error(`${step.call} never answered with ${step.until}; last: ${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const { client } of sessions.values()) {
  await client.close();
}
process.stdout.write(JSON.stringify({ texts, asked }));
