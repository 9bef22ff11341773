#!/usr/bin/env bash
# Fails, listing them, when processes the test suite starts are still running after it: the
# proxy, the demo server, the third-party test servers, Prometheus, ChromeDriver with the
# Chromium it drives, HAProxy in front of the fleet tests' replicas, and the test PostgreSQL cluster (its postmaster names the checkout in
# `-c pluggedin.checkout=…`, its keeper shell too). Run it after the tests (`.ci/run` does).
# Only processes of this checkout count — their command line, executable or working directory is
# inside it — so test runs of other checkouts on the same machine are left out. Processes get up
# to LEFTOVERS_GRACE seconds (default 10) to finish exiting before they count.
set -euo pipefail
cd "$(dirname "$0")/.."
logical="$(pwd -L)"
physical="$(pwd -P)"
names='pluggedin-mcp-proxy|pluggedin-demo-server|server-everything|mcp-server-time'
names="$names|server-filesystem|prometheus|chromedriver|chromium|postgres|haproxy"
grace="${LEFTOVERS_GRACE:-10}"

leftovers() {
  local proc pid cmdline exe cwd
  for proc in /proc/[0-9]*; do
    pid="${proc#/proc/}"
    [ "$pid" = "$$" ] && continue
    # A zombie has an empty command line: it has exited, only its parent has not reaped it.
    cmdline="$( { tr '\0' ' ' < "$proc/cmdline"; } 2>/dev/null)" || continue
    [ -n "$cmdline" ] || continue
    [[ "$cmdline" =~ $names ]] || continue
    exe="$(readlink "$proc/exe" 2>/dev/null || true)"
    cwd="$(readlink "$proc/cwd" 2>/dev/null || true)"
    case "$cmdline $exe $cwd/" in
      *"$logical/"* | *"$physical/"*) echo "$pid $cmdline" ;;
    esac
  done
}

deadline=$((SECONDS + grace))
found="$(leftovers)"
while [ -n "$found" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.5
  found="$(leftovers)"
done
if [ -n "$found" ]; then
  echo "processes still running after the tests (pid, command line):" >&2
  echo "$found" >&2
  exit 1
fi
echo "no test processes left running"
