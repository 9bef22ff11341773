#!/usr/bin/env bash
# Installs what the benchmark suite (`cargo bench --bench proxy`) needs beyond the Rust build:
#   - wrk, the HTTP load generator, and HAProxy, the floor of one HTTP hop: Debian packages, through
#     apt-get when missing (as root; otherwise it says what to install and fails). Without them the
#     suite's HTTP and fleet scenarios fail.
#   - PostgreSQL (initdb, postgres, pg_isready, createdb), the fleet scenario's shared store: the
#     Debian package postgresql, likewise. The suite runs a cluster of its own in a temp dir.
#   - the peer proxy it compares against, into .deps/bench-venv (ignored by git): FastMCP from PyPI,
#     whose `fastmcp run <mcpServers file>` aggregates the same file format. Optional locally: without
#     it the suite leaves the peer rows out (CI passes --require-peer, so there it must be present).
#   - the tokenizer the tool-search benchmark counts `tools/list` tokens with
#     (benches/tool_search/tokens.js), into .deps/tool-search: gpt-tokenizer from npm, which embeds
#     its vocabularies and so counts offline. Without it that benchmark leaves the token rows out
#     (CI passes --require-tokenizer).
# On a machine with systemd, installing haproxy also starts the package's own haproxy service (its
# default configuration listens nowhere); the suite runs an instance of its own from its work dir.
# Idempotent: a second run with everything present does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
# The physical path: .deps may be a symlink shared between checkouts, and a venv records the path
# it was made at in its scripts; made through one checkout's link, it would break with that checkout.
DEPS="$(cd .deps && pwd -P)"
# Pinned so a registry release cannot change what the figures compare against.
FASTMCP_VERSION="4.1.6"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# Debian installs haproxy in /usr/sbin, outside a user's PATH; the suite looks there too.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# Debian keeps the server's binaries off PATH, in /usr/lib/postgresql/<version>/bin.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
  ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  scripts/apt-install.sh "${missing[@]}"
fi

if [ "$("$DEPS/bench-venv/bin/fastmcp" --version 2>/dev/null | awk '{print $NF}')" != "$FASTMCP_VERSION" ]; then
  echo "installing fastmcp==$FASTMCP_VERSION" >&2
  # --clear: a venv whose scripts point at another path cannot be repaired in place.
  python3 -m venv --clear "$DEPS/bench-venv"
  "$DEPS/bench-venv/bin/pip" install --quiet --disable-pip-version-check "fastmcp==$FASTMCP_VERSION" >&2
fi
# Pinned so a registry release cannot change the token counts.
GPT_TOKENIZER_VERSION="4.0.0"
if ! grep -qs "\"version\": \"$GPT_TOKENIZER_VERSION\"" \
  "$DEPS/tool-search/node_modules/gpt-tokenizer/package.json"; then
  echo "installing gpt-tokenizer@$GPT_TOKENIZER_VERSION" >&2
  npm install --silent --no-audit --no-fund --save-exact --prefix "$DEPS/tool-search" \
    "gpt-tokenizer@$GPT_TOKENIZER_VERSION" >&2
fi
echo "benchmark dependencies ready: wrk, haproxy, postgresql," \
  "fastmcp $FASTMCP_VERSION in $DEPS/bench-venv," \
  "gpt-tokenizer $GPT_TOKENIZER_VERSION in $DEPS/tool-search" >&2
