#!/usr/bin/env bash
# Installs Debian packages with apt-get, as the dependency scripts need them: `scripts/apt-install.sh
# PKG...`. As root only; otherwise it says what to install and fails. The package lists are
# refreshed only when no refresh happened in the last hour, so the scripts that call it one after
# the other (test-deps.sh, then bench-deps.sh in CI) update them once.
set -euo pipefail
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: $*; install them (on Debian or Ubuntu, as root:" \
    "apt-get install $*) and run this script again" >&2
  exit 1
fi
echo "installing $* with apt-get" >&2
if ! find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | grep -q .; then
  apt-get update -qq >&2
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
