#!/usr/bin/env bash
# Installs the third-party MCP servers and clients the integration tests run against, into .deps/
# (ignored by git): @modelcontextprotocol/server-everything and the TypeScript SDK
# (@modelcontextprotocol/sdk, whose client the tests drive the proxy with) from npm;
# mcp-server-time, the MCP Python SDK and aiosmtpd (a loopback SMTP server for the e-mail tests)
# from PyPI.
# Idempotent: a second run with everything present does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS="$PWD/.deps"
mkdir -p "$DEPS"

EVERYTHING_VERSION="2026.8.31"
TS_SDK_VERSION="1.32.2"
# Pinned so a registry release cannot change what the tests see.
TIME_VERSION="2026.10.19"
PYTHON_SDK_VERSION="2.3.0"
# A loopback SMTP server for the notification e-mail tests.
AIOSMTPD_VERSION="1.4.6"

if [ ! -f "$DEPS/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ]; then
  echo "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >&2
  npm install --silent --no-audit --no-fund --prefix "$DEPS/npm" \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >&2
fi

# Pinned on its own, so that a server-everything release cannot change the client the tests use.
if [ "$(node -p "require('$DEPS/npm/node_modules/@modelcontextprotocol/sdk/package.json').version" 2>/dev/null)" != "$TS_SDK_VERSION" ] \
  || ! grep -q '"@modelcontextprotocol/sdk"' "$DEPS/npm/package.json"; then
  echo "installing @modelcontextprotocol/sdk@$TS_SDK_VERSION" >&2
  npm install --silent --no-audit --no-fund --save-exact --prefix "$DEPS/npm" \
    "@modelcontextprotocol/sdk@$TS_SDK_VERSION" >&2
fi

if [ ! -x "$DEPS/venv/bin/mcp-server-time" ]; then
  echo "installing mcp-server-time" >&2
  python3 -m venv "$DEPS/venv"
  # The official MCP Python SDK (`mcp`) comes along; the client tests drive the proxy with it.
  "$DEPS/venv/bin/pip" install --quiet --disable-pip-version-check \
    "mcp-server-time==$TIME_VERSION" "mcp==$PYTHON_SDK_VERSION" >&2
fi

if ! "$DEPS/venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
  echo "installing aiosmtpd" >&2
  "$DEPS/venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" >&2
fi
echo "test dependencies ready in $DEPS" >&2
