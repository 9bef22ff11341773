#!/usr/bin/env bash
# Installs the third-party MCP servers the integration tests run against, into .deps/ (ignored by
# git): @modelcontextprotocol/server-everything, @modelcontextprotocol/server-filesystem and the
# official TypeScript SDK (@modelcontextprotocol/sdk, for the client scripts in tests/clients/) from
# npm; mcp-server-time, the MCP Python SDK, aiosmtpd (a loopback SMTP server for the e-mail tests)
# and opentelemetry-proto (for the OTLP receiver of the traces tests) from PyPI. Prometheus (the
# server and promtool, for the metrics tests), Chromium with ChromeDriver (for the console's browser
# tests, headless), PostgreSQL (initdb, postgres and pg_isready, for the PostgreSQL store's tests: a
# throwaway cluster per test process), openssl and HAProxy (the fleet tests' load balancer) are
# Debian packages, installed through apt-get
# when missing (as root; otherwise it says what to install and fails). Idempotent: a second run with
# everything present does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  scripts/apt-install.sh prometheus
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  scripts/apt-install.sh chromium chromium-driver
fi
# Debian keeps the server's binaries off PATH, in /usr/lib/postgresql/<version>/bin; openssl
# makes the test cluster's certificates.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
  ! command -v initdb >/dev/null 2>&1; then
  scripts/apt-install.sh postgresql
fi
if ! command -v openssl >/dev/null 2>&1; then
  scripts/apt-install.sh openssl
fi
# The load balancer in front of the fleet tests' replicas (Debian puts it in /usr/sbin).
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  scripts/apt-install.sh haproxy
fi
DEPS="$PWD/.deps"
mkdir -p "$DEPS"

EVERYTHING_VERSION="2026.8.31"
FILESYSTEM_VERSION="2026.8.31"
TS_SDK_VERSION="1.32.2"
# Pinned so a registry release cannot change what the tests see.
TIME_VERSION="2026.10.19"
PYTHON_SDK_VERSION="2.3.0"
# A loopback SMTP server for the notification e-mail tests.
AIOSMTPD_VERSION="1.4.6"
# The OpenTelemetry protobuf definitions, for the OTLP receiver of the traces tests.
OTEL_PROTO_VERSION="1.45.2"

if [ ! -f "$DEPS/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ] ||
  [ ! -f "$DEPS/npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js" ] ||
  ! grep -qs "\"version\": \"$TS_SDK_VERSION\"" \
    "$DEPS/npm/node_modules/@modelcontextprotocol/sdk/package.json"; then
  echo "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION," \
    "@modelcontextprotocol/server-filesystem@$FILESYSTEM_VERSION and" \
    "@modelcontextprotocol/sdk@$TS_SDK_VERSION" >&2
  npm install --silent --no-audit --no-fund --save-exact --prefix "$DEPS/npm" \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" \
    "@modelcontextprotocol/server-filesystem@$FILESYSTEM_VERSION" \
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
if ! "$DEPS/venv/bin/python" -c "import importlib.metadata as m, sys
sys.exit(m.version('opentelemetry-proto') != '$OTEL_PROTO_VERSION')" 2>/dev/null; then
  echo "installing opentelemetry-proto" >&2
  "$DEPS/venv/bin/pip" install --quiet --disable-pip-version-check \
    "opentelemetry-proto==$OTEL_PROTO_VERSION" >&2
fi
echo "test dependencies ready in $DEPS" >&2
