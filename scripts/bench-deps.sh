#!/usr/bin/env bash
# Installs the peer proxy the benchmark suite compares against (scenario 6) into .deps/bench-venv
# (ignored by git): FastMCP from PyPI, whose `fastmcp run <mcpServers file>` aggregates the same
# file format. Optional: without it, `cargo bench --bench proxy` skips the peer rows.
# Idempotent: a second run with everything present does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS="$PWD/.deps"
# Pinned so a registry release cannot change what the figures compare against.
FASTMCP_VERSION="4.1.6"

if [ "$("$DEPS/bench-venv/bin/fastmcp" --version 2>/dev/null | awk '{print $NF}')" != "$FASTMCP_VERSION" ]; then
  echo "installing fastmcp==$FASTMCP_VERSION" >&2
  python3 -m venv "$DEPS/bench-venv"
  "$DEPS/bench-venv/bin/pip" install --quiet --disable-pip-version-check "fastmcp==$FASTMCP_VERSION" >&2
fi
echo "benchmark peer ready in $DEPS/bench-venv" >&2
