// Drives the proxy with the official MCP TypeScript SDK (@modelcontextprotocol/sdk), as a
// third-party client would.
//
// Usage: node ts_sdk_client.mjs cancel URL
//   The SDK is the one scripts/test-deps.sh installed in .deps/npm.
//   `cancel`: calls the slow tool demo__sleep, aborts it with an AbortSignal once the proxy answers
//   with its stream, waits for the SDK's first attempt to resume that stream (GET with
//   Last-Event-ID), then makes a call that lasts over two of the SDK's resumption intervals (3 s,
//   from the proxy's priming event) and reports every resumption attempt it saw.
// Prints one JSON object with what it saw; the Rust tests check it. Exits non-zero on any failure.

import { createRequire } from 'node:module';

const [scenario, url] = process.argv.slice(2);
const require = createRequire(new URL('../../.deps/npm/package.json', import.meta.url));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

/** How long to wait for what should happen soon (the Rust tests' WAIT is 20 s). */
const WAIT_MS = 20000;

function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// What went over the wire: resumption attempts and when the slow call's stream opened.
const resumes = [];
const firstResume = deferred();
const slowStreamOpened = deferred();

async function observedFetch(input, init) {
  const headers = new Headers(init?.headers);
  const lastEventId = headers.get('last-event-id');
  const body = typeof init?.body === 'string' ? init.body : '';
  const response = await fetch(input, init);
  if (init?.method === 'GET' && lastEventId) {
    resumes.push({ lastEventId, status: response.status });
    firstResume.resolve();
  }
  if (init?.method === 'POST' && body.includes('"demo__sleep"')
      && (response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    slowStreamOpened.resolve();
  }
  return response;
}

async function main() {
  if (scenario !== 'cancel') {
    throw new Error(`unknown scenario ${scenario}`);
  }
  const seen = {};
  const client = new Client({ name: 'ts-sdk-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: observedFetch });
  await client.connect(transport);
  seen.server = client.getServerVersion()?.name;

  // The demo server joins the catalog once it is connected behind the proxy.
  await within((async () => {
    for (;;) {
      const { tools } = await client.listTools();
      if (tools.some((tool) => tool.name === 'demo__sleep')) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })(), 'demo__sleep in the catalog');

  const abort = new AbortController();
  const slow = client.callTool(
    { name: 'demo__sleep', arguments: { ms: 600000 } },
    undefined,
    { signal: abort.signal },
  ).then(() => 'answered', (error) => `rejected: ${error.message}`);
  // The proxy answers with a stream once the call is on its way to the server.
  await within(slowStreamOpened.promise, "the slow call's stream");
  abort.abort('cancelled by the test');
  seen.cancelled = await slow;

  await within(firstResume.promise, 'the first resumption attempt');
  // A call that outlasts two resumption intervals: a client that polls would poll meanwhile.
  const later = await client.callTool({ name: 'demo__sleep', arguments: { ms: 7000 } });
  seen.later = later.content?.[0]?.text;
  seen.resumes = resumes;
  await client.close();
  console.log(JSON.stringify(seen));
}

main().then(() => process.exit(0), (error) => {
  console.error(error?.stack ?? String(error));
  process.exit(1);
});
