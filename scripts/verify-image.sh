#!/usr/bin/env bash
# Builds the Dockerfile and checks the image and the fleet's files where no container registry can
# be reached: Debian's buildah and podman, base images made locally. Not run by CI: it needs root,
# the Debian mirror, crates.io, the npm registry and PyPI, and about 45 minutes on two busy cores
# the first time (a release build with whole-program LTO inside the build: 36 of them).
#
#   1. Base images: `debian:<suite>-slim` stands in as a debootstrap --variant=minbase of the same
#      suite (with the slim image's dpkg excludes and apt sources); `rust:<version>-slim-<suite>`
#      as that plus gcc and libc6-dev and this machine's Rust toolchain of the same version under
#      /usr/local, as the official image has them. Both are tagged with the official names in the
#      local store, so the Dockerfile builds unchanged (`--pull=never`).
#   2. `buildah bud` of the Dockerfile (isolation chroot: no cgroups or user namespaces needed).
#   3. The image run with podman (runtime runc): the user, the tools, an MCP client's session over
#      stdio through the entrypoint — initialize, tools/list with a `uvx` and an `npx` server,
#      calls to both and to the store — then a second container on the same volume reading back
#      what the first stored, and the volume's files and owner; HTTP mode's /health and
#      /health/ready, compose's health probe, SIGTERM.
#   4. compose.yaml against the Compose Specification's JSON schema (check-jsonschema's vendored
#      copy, from PyPI), and as podman-compose reads it; deploy/haproxy.cfg with `haproxy -c`.
#   5. The fleet: compose.yaml's services as podman-compose merged them, each started with
#      `podman run` (postgres:17 and haproxy:3.2 stood in for by Debian's packages on the stand-in
#      base), sessions through HAProxy, a graceful stop and a kill of a session's home.
#
# `docker compose up` itself is not run. Everything is kept under $PLUGGEDIN_VERIFY_DIR
# (/var/tmp/pluggedin-verify-image) and in podman's store, and removed at the end unless KEEP=1
# (the base images and the layer cache then make a second run take minutes).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${PLUGGEDIN_VERIFY_DIR:-/var/tmp/pluggedin-verify-image}
suite=${DEBIAN_SUITE:-trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
keep=${KEEP:-0}
image=localhost/pluggedin-mcp-proxy:verify
volume=pluggedin-verify-data
# Pinned as in scripts/test-deps.sh: a registry release cannot change what is checked.
time_version=2026.10.19
everything_version=2026.8.31
check_jsonschema_version=0.39.0
podman_compose_version=1.6.0

step() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, buildah and podman need it)"
for tool in debootstrap buildah podman runc haproxy python3 rustc; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    fail "$tool is missing (apt-get install debootstrap buildah podman runc haproxy)"
done
# The fleet's containers find each other by service name, as on a compose network: the network
# backend needs its DNS plugin (Debian installs neither by default).
case $(podman info --format '{{.Host.NetworkBackend}}') in
  netavark)
    [ -x /usr/lib/podman/aardvark-dns ] || command -v aardvark-dns >/dev/null ||
      fail "aardvark-dns is missing (apt-get install aardvark-dns)" ;;
  *)
    [ -x /usr/lib/cni/dnsname ] || [ -x /usr/libexec/cni/dnsname ] ||
      fail "the CNI dnsname plugin is missing" \
        "(apt-get install golang-github-containernetworking-plugin-dnsname)" ;;
esac
sysroot=$(rustc --print sysroot)
rust_version=$(rustc --version | cut -d ' ' -f 2 | cut -d . -f 1,2)
base=docker.io/library/debian:$suite-slim
rust_base=docker.io/library/rust:$rust_version-slim-$suite
# compose.yaml's other images, stood in for by Debian's packages on the stand-in base.
pg_image=docker.io/library/postgres:17
lb_image=docker.io/library/haproxy:3.2

# This machine's hard limits are below podman's defaults and root may not raise them here (no
# CAP_SYS_RESOURCE), so every container gets limits it can set.
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
# crun refuses hybrid cgroup hierarchies (v1 controllers with a v2 mount), which this machine has.
run=(podman --runtime runc run --rm "${limits[@]}")

# The fleet's containers (named pluggedin-verify-<service>), network and volumes.
remove_fleet() {
  for service in haproxy proxy-1 proxy-2 proxy-3 postgres; do
    podman rm -f -t 0 "pluggedin-verify-$service" >/dev/null 2>&1 || true
  done
  podman network rm -f pluggedin-verify >/dev/null 2>&1 || true
  for data in postgres-data proxy-1-data proxy-2-data proxy-3-data; do
    podman volume rm -f "pluggedin-verify-$data" >/dev/null 2>&1 || true
  done
}

cleanup() {
  remove_fleet
  if [ "$keep" = 1 ]; then
    echo "kept: $work, images $image $base $rust_base $pg_image $lb_image," \
      "volume $volume (KEEP=1)"
    return
  fi
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  podman rmi -f "$image" "$rust_base" "$base" "$pg_image" "$lb_image" >/dev/null 2>&1 || true
  buildah rm --all >/dev/null 2>&1 || true
  podman image prune -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"

step "base image $base: debootstrap --variant=minbase $suite from $mirror"
if ! podman image exists "$base"; then
  rootfs=$work/rootfs
  rm -rf "$rootfs"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap (see $work/debootstrap.log)"
  # What the official slim image has beside a minimal base: apt sources with updates and security,
  # and no documentation, manuals or translations from packages installed later.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  # This machine may reach the registries through a TLS-intercepting proxy whose CA it trusts
  # (the certificates added in /usr/local/share/ca-certificates): the stand-in base carries them,
  # so that the build's `ca-certificates` trusts them too. The official base has none.
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" \
    2>/dev/null || true
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$base" >/dev/null
  rm -rf "$rootfs"
fi
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$base"

step "build image $rust_base: $base + gcc, libc6-dev + the Rust toolchain at $sysroot"
if ! podman image exists "$rust_base"; then
  container=$(buildah from --pull=never "$base")
  buildah run --isolation chroot --network host "$container" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y \
       --no-install-recommends ca-certificates gcc libc6-dev >/dev/null &&
     rm -rf /var/lib/apt/lists/*'
  for part in bin lib libexec etc; do
    buildah copy --quiet "$container" "$sysroot/$part" "/usr/local/rust/$part" >/dev/null
  done
  buildah run --isolation chroot "$container" -- sh -c \
    'mkdir -p /usr/local/cargo/bin && for tool in cargo rustc rustdoc; do
       ln -s /usr/local/rust/bin/$tool /usr/local/cargo/bin/$tool; done'
  buildah config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUST_VERSION="$rust_version" "$container"
  buildah commit --quiet --rm "$container" "$rust_base" >/dev/null
fi
podman run --rm "${limits[@]}" --runtime runc "$rust_base" cargo --version

step "buildah bud $repo/Dockerfile → $image"
started=$(date +%s)
buildah bud --isolation chroot --network host --pull=never --layers \
  -t "$image" -f "$repo/Dockerfile" "$repo" >"$work/build.log" 2>&1 ||
  {
    tail -40 "$work/build.log"
    fail "the image did not build (log above)"
  }
echo "built in $(($(date +%s) - started)) s; last lines of the build:"
tail -3 "$work/build.log"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
podman image inspect "$image" --format 'entrypoint {{.Config.Entrypoint}} cmd {{.Config.Cmd}}
user {{.Config.User}} workdir {{.Config.WorkingDir}} volumes {{.Config.Volumes}}
ports {{.Config.ExposedPorts}} env {{.Config.Env}}'

step "the image's user and tools"
"${run[@]}" --entrypoint sh "$image" -c \
  'set -e; id; echo "HOME=$HOME PLUGGEDIN_DATA_DIR=$PLUGGEDIN_DATA_DIR"; ls -ld /data;
   echo "node $(node --version)"; echo "npm $(npm --version)"; echo "npx $(npx --version)";
   uv --version; uvx --version; python3 --version; pluggedin-mcp-proxy --version;
   test -s /etc/ssl/certs/ca-certificates.crt && echo "CA certificates present"' |
  tee "$work/tools.txt"
grep -q '^uid=0' "$work/tools.txt" && fail "the image runs as root"

step "an MCP session over stdio: docker run -i IMAGE --config /config/mcp.json"
mkdir -p "$work/config"
cat >"$work/config/mcp.json" <<EOF
{
  "mcpServers": {
    "time": { "command": "uvx", "args": ["mcp-server-time@$time_version"] },
    "everything": { "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-everything@$everything_version"] }
  }
}
EOF
podman volume rm -f "$volume" >/dev/null 2>&1 || true
podman volume create "$volume" >/dev/null
# The first start downloads both servers' packages: the first look waits for them.
# uv trusts its own roots unless SSL_CERT_FILE names a bundle (the proxy passes that variable on
# to servers): the system's, which has this machine's added CAs.
session=("${run[@]}" -i --network host -e SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  -v "$work/config:/config:ro" -v "$volume:/data" "$image" --config /config/mcp.json
  --startup-wait 300)
python3 - "$work/session.log" "${session[@]}" <<'EOF'
import json, subprocess, sys, threading, time, queue

log_path, command = sys.argv[1], sys.argv[2:]
log = open(log_path, "w")
proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                        text=True)
lines = queue.Queue()
threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

def send(message):
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()

def request(id, method, params):
    send({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    while True:
        line = lines.get(timeout=600)
        message = json.loads(line)
        if message.get("id") == id:
            if "error" in message:
                sys.exit(f"FAIL: {method}: {message['error']}")
            return message["result"]

def text(result):
    return " ".join(c.get("text", "") for c in result["content"])[:160]

init = request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "verify-image", "version": "1"}})
print("initialize:", init["protocolVersion"], init["serverInfo"])
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
# A server's first start fetches its package; one that takes longer than the proxy's wait for it
# joins later (see the log's `connected` lines): list again until both servers are there.
deadline, lists = time.monotonic() + 300, 0
while True:
    lists += 1
    names = [tool["name"] for tool in request(lists + 1, "tools/list", {})["tools"]]
    if "everything__echo" in names and "time__get_current_time" in names:
        break
    if time.monotonic() > deadline:
        break
    time.sleep(1)
print(f"tools/list (list number {lists}): {len(names)} tools;",
      ", ".join(n for n in names if n.startswith("time__")),
      "|", len([n for n in names if n.startswith("everything__")]), "everything__ tools |",
      len([n for n in names if n.startswith("pluggedin_")]), "pluggedin_ tools")
for expected in ["time__get_current_time", "everything__echo", "pluggedin_clipboard_set"]:
    if expected not in names:
        sys.exit(f"FAIL: {expected} not listed")
calls = [("time__get_current_time", {"timezone": "Europe/Paris"}),
         ("everything__echo", {"message": "through the image"}),
         ("pluggedin_clipboard_set", {"name": "verify-image", "value": "kept in the volume"})]
for id, (name, arguments) in enumerate(calls, start=lists + 2):
    result = request(id, "tools/call", {"name": name, "arguments": arguments})
    if result.get("isError"):
        sys.exit(f"FAIL: {name}: {text(result)}")
    print(f"tools/call {name}:", text(result))
proc.stdin.close()
code = proc.wait(timeout=60)
print("stdin closed; the proxy exited with", code)
sys.exit(code)
EOF
echo "the proxy's log: servers connected, and first attempts that failed:"
grep -o 'downstream{server=[a-z]*}: \(connected\|server not connected: [^:]*: [^:]*\)' \
  "$work/session.log" || true

step "a second container on the same volume"
python3 - "$work/session2.log" "${run[@]}" -i -v "$volume:/data" "$image" <<'EOF'
import json, subprocess, sys

log_path, command = sys.argv[1], sys.argv[2:]
messages = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
     "capabilities": {}, "clientInfo": {"name": "verify-image", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
     "params": {"name": "pluggedin_clipboard_get", "arguments": {"name": "verify-image"}}},
]
# The proxy answers every request before it acts on stdin's end.
out = subprocess.run(command, input="".join(json.dumps(m) + "\n" for m in messages),
                     capture_output=True, text=True, timeout=300)
open(log_path, "w").write(out.stderr)
answers = {m.get("id"): m for m in map(json.loads, out.stdout.splitlines())}
result = answers[2]["result"]
content = " ".join(c.get("text", "") for c in result["content"])
print("tools/call pluggedin_clipboard_get:", content[:160])
if "kept in the volume" not in content:
    sys.exit("FAIL: the value stored by the first container is not read back")
EOF
"${run[@]}" -v "$volume:/data" --entrypoint ls "$image" -ln /data

step "Streamable HTTP mode, as compose.yaml starts it, and SIGTERM through tini"
token=verify-image-token
container=$(podman --runtime runc run -d "${limits[@]}" --network host \
  -e PLUGGEDIN_AUTH_TOKEN=$token "$image" \
  --transport streamable-http --host 127.0.0.1 --port 0 --require-api-auth)
url=
for _ in $(seq 100); do
  url=$(podman logs "$container" 2>&1 | grep -o 'listening on http://[^ ]*' |
    cut -d ' ' -f 3) || true
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || fail "no listening line: $(podman logs "$container" 2>&1 | tail -5)"
base_url=${url%/mcp}
echo "listening: $url"
echo "GET /health without a token: $(curl -s "$base_url/health")"
echo "GET /health with the token: $(curl -s -H "Authorization: Bearer $token" "$base_url/health" |
  head -c 200)…"
ready=$(curl -s -o /dev/null -w '%{http_code}' "$base_url/health/ready")
echo "GET /health/ready: HTTP $ready"
[ "$ready" = 200 ] || fail "/health/ready answered $ready"
# compose.yaml's health check, in the image's Node, against this port.
for path in /health /health/ready; do
  podman exec "$container" node -e "fetch('$base_url$path')
    .then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" ||
    fail "compose's health probe on $path failed"
  echo "compose's health probe (node's fetch in the image) on $path: exit 0"
done
podman stop -t 20 "$container" >/dev/null
code=$(podman inspect "$container" --format '{{.State.ExitCode}}')
echo "after podman stop (SIGTERM through tini): exit code $code; the proxy's last lines:"
logs=$(podman logs "$container" 2>&1)
tail -3 <<<"$logs" | cut -c 1-200
[ "$code" = 0 ] || fail "the proxy exited with $code on SIGTERM"
grep -q 'SIGTERM: draining' <<<"$logs" || fail "no drain on SIGTERM"
podman rm "$container" >/dev/null

step "compose.yaml against the Compose Specification's schema" \
  "(check-jsonschema $check_jsonschema_version)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  "check-jsonschema==$check_jsonschema_version"
"$work/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$repo/compose.yaml"
# The check can fail: a key the specification does not have, in a service and in the replicas'
# shared anchor (merged into all three), is refused.
sed -e 's/^    restart: unless-stopped$/&\n    no_such_key: 1/' \
  -e 's/^  restart: unless-stopped$/&\n  no_such_key: 1/' "$repo/compose.yaml" \
  >"$work/compose-wrong.yaml"
if "$work/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec \
  "$work/compose-wrong.yaml" >"$work/compose-wrong.txt" 2>&1; then
  fail "the schema check let an unknown key through"
fi
echo "control: a copy with an unknown key is refused:"
grep -c 'no_such_key' "$work/compose-wrong.txt" | xargs echo "  errors naming it:"

step "compose.yaml as podman-compose $podman_compose_version reads it (interpolated, merged)"
# Debian's podman-compose (1.0.3) has no `config`; PyPI's has.
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  "podman-compose==$podman_compose_version"
(cd "$repo" && POSTGRES_PASSWORD=pw PLUGGEDIN_SESSION_KEY=key PLUGGEDIN_AUTH_TOKEN=token \
  "$work/venv/bin/podman-compose" -f compose.yaml config) >"$work/compose-config.yaml"
echo "services:" \
  "$(sed -n '/^services:/,/^[a-z]/s/^  \([a-z0-9-]*\):$/\1/p' "$work/compose-config.yaml" | xargs)"
grep -E 'PLUGGEDIN_(DATABASE|REPLICA)_URL' "$work/compose-config.yaml"
# Without the secrets, it refuses to start rather than run with empty ones.
if (cd "$repo" && env -u POSTGRES_PASSWORD PLUGGEDIN_SESSION_KEY=key PLUGGEDIN_AUTH_TOKEN=token \
  "$work/venv/bin/podman-compose" -f compose.yaml config) >/dev/null \
  2>"$work/compose-unset.txt"; then
  fail "compose.yaml was read without POSTGRES_PASSWORD"
fi
echo "without POSTGRES_PASSWORD: $(tail -1 "$work/compose-unset.txt")"

step "deploy/haproxy.cfg: haproxy -c"
haproxy -v | sed -n 1p
haproxy -c -f "$repo/deploy/haproxy.cfg"
# Again with the replicas' names resolving, as on the compose network (a private /etc/hosts in a
# mount namespace of its own), and warnings fatal.
printf '127.0.0.1 localhost\n127.0.0.2 proxy-1\n127.0.0.3 proxy-2\n127.0.0.4 proxy-3\n' \
  >"$work/hosts"
unshare --mount sh -c \
  "mount --bind '$work/hosts' /etc/hosts && haproxy -dW -c -f '$repo/deploy/haproxy.cfg'"

step "the fleet of compose.yaml on podman: PostgreSQL, three replicas of the image, HAProxy"
# compose.yaml's services as podman-compose merged and interpolated them, each started with
# `podman run` on a network of their own (its DNS answers the service names), in compose's order:
# PostgreSQL, once its health check passes the replicas, once theirs pass HAProxy. The health
# checks are compose's, run with `podman exec`. postgres:17 and haproxy:3.2 are stand-ins of the
# same names: Debian's PostgreSQL 17 and HAProxy on the stand-in base, with an entrypoint that
# does what the official postgres image's does with POSTGRES_USER, _PASSWORD and _DB.
if ! podman image exists "$pg_image"; then
  cat >"$work/postgres-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/password
  initdb --username="$POSTGRES_USER" --pwfile=/tmp/password --auth-local=trust \
    --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm /tmp/password
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec "$@" -c listen_addresses='*'
EOF
  container=$(buildah from --pull=never "$base")
  buildah run --isolation chroot --network host "$container" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y \
       --no-install-recommends postgresql-17 >/dev/null && rm -rf /var/lib/apt/lists/* &&
     install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data'
  buildah copy --quiet --chmod 0755 "$container" "$work/postgres-entrypoint.sh" \
    /usr/local/bin/docker-entrypoint.sh >/dev/null
  buildah config --user postgres --env PGDATA=/var/lib/postgresql/data \
    --env PATH=/usr/lib/postgresql/17/bin:/usr/local/bin:/usr/bin:/bin \
    --entrypoint '["/usr/local/bin/docker-entrypoint.sh"]' --cmd postgres "$container"
  buildah commit --quiet --rm "$container" "$pg_image" >/dev/null
fi
if ! podman image exists "$lb_image"; then
  container=$(buildah from --pull=never "$base")
  buildah run --isolation chroot --network host "$container" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y \
       --no-install-recommends haproxy >/dev/null && rm -rf /var/lib/apt/lists/* &&
     mkdir -p /usr/local/etc/haproxy'
  buildah config --user haproxy \
    --cmd '["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' "$container"
  buildah commit --quiet --rm "$container" "$lb_image" >/dev/null
fi
echo "stand-ins: $(podman run --rm "${limits[@]}" --runtime runc --entrypoint postgres "$pg_image" \
  --version), $(podman run --rm "${limits[@]}" --runtime runc "$lb_image" haproxy -v | sed -n 1p)"

secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
token=$(secret)
(cd "$repo" && POSTGRES_PASSWORD=$(secret) PLUGGEDIN_SESSION_KEY=$(secret) \
  PLUGGEDIN_AUTH_TOKEN=$token PLUGGEDIN_IMAGE=$image \
  "$work/venv/bin/podman-compose" -f compose.yaml config) >"$work/compose-fleet.yaml"
cat >"$work/service.py" <<'EOF'
"""`run NAME`: starts compose service NAME with podman; `health NAME`: its health check, once."""
import os, subprocess, sys, yaml

action, name, config_path, repo, network, prefix = sys.argv[1:7]
extra = sys.argv[7:]
service = yaml.safe_load(open(config_path))["services"][name]
if action == "health":
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    sys.exit(subprocess.run(["podman", "exec", prefix + name, *test[1:]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode)
command = ["podman", "--runtime", "runc", "run", "-d", "--name", prefix + name,
           "--network", network, "--network-alias", name, *extra]
for key, value in service.get("environment", {}).items():
    command += ["-e", f"{key}={value}"]
for volume in service.get("volumes", []):
    source, rest = volume.split(":", 1)
    if source.startswith("."):
        source = os.path.join(repo, source)
    else:
        source = prefix + source
    command += ["-v", f"{source}:{rest}"]
if "stop_grace_period" in service:
    command += ["--stop-timeout", service["stop_grace_period"].rstrip("s")]
command.append(service["image"])
command += service.get("command", [])
subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
EOF
network=pluggedin-verify
prefix=pluggedin-verify-
service() {
  python3 "$work/service.py" "$1" "$2" "$work/compose-fleet.yaml" "$repo" "$network" "$prefix" \
    "${@:3}"
}
# Waits until service $1's health check passes, at most $2 tries a second apart.
healthy() {
  for _ in $(seq "$2"); do
    service health "$1" && return 0
    sleep 1
  done
  podman logs "$prefix$1" 2>&1 | tail -5
  fail "$1 did not become healthy"
}
remove_fleet
podman network create "$network" >/dev/null
service run postgres "${limits[@]}"
healthy postgres 60
echo "postgres: healthy (pg_isready)"
for replica in proxy-1 proxy-2 proxy-3; do
  # As in the stdio session: uv's roots are its own unless SSL_CERT_FILE names the system's.
  service run "$replica" "${limits[@]}" -e SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
done
for replica in proxy-1 proxy-2 proxy-3; do
  healthy "$replica" 300
  logs=$(podman logs "$prefix$replica" 2>&1)
  echo "$replica: healthy (GET /health/ready through the image's node);" \
    "$(grep -o '"joined the fleet[^"]*"' <<<"$logs" | head -1)"
done
# HAProxy wants twice its maxconn in open files: this machine's hard limit.
service run haproxy --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096
lb=$(podman inspect "${prefix}haproxy" \
  --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
lb_ready() { curl -s -o /dev/null -w '%{http_code}' "http://$lb:12006/health/ready" || true; }
for _ in $(seq 30); do
  [ "$(lb_ready)" = 200 ] && break
  sleep 1
done
echo "haproxy at $lb:12006 (its port not published: reached on the network's address);" \
  "GET /health/ready through it: HTTP $(lb_ready)"

cat >"$work/fleet_client.py" <<'EOF'
"""A Streamable HTTP client's requests, one POST each: `init` prints a session id; `calls ID N
LABEL` makes N calls of pluggedin_clipboard_set in that session, each read back with
pluggedin_clipboard_get, and reads back what the first `calls` stored (the store is PostgreSQL,
shared by the fleet). Built-in tools: what servers fetched by npx and uvx do on a loaded machine
(join late, or not at all) does not decide the check."""
import json, sys, time, urllib.error, urllib.request

url, token, action = sys.argv[1:4]
session = sys.argv[4] if len(sys.argv) > 4 else None
next_id = [1]

def post(method, params, notification=False):
    message = {"jsonrpc": "2.0", "method": method, "params": params}
    if not notification:
        message["id"] = next_id[0]
        next_id[0] += 1
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
               "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    if session:
        headers["Mcp-Session-Id"] = session
    request = urllib.request.Request(url, json.dumps(message).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        sid, body = response.headers.get("mcp-session-id"), response.read().decode()
        kind = response.headers.get("content-type", "")
    if notification:
        return sid, None
    # An event stream may open with an event without data (a resumption point).
    answers = [json.loads(line[5:]) for line in body.splitlines()
               if line.startswith("data:") and line[5:].strip()] \
        if kind.startswith("text/event-stream") else [json.loads(body)]
    answer = next(a for a in answers if a.get("id") == message["id"])
    if "error" in answer:
        sys.exit(f"FAIL: {method}: {answer['error']}")
    return sid, answer["result"]

if action == "init":
    session, result = post("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                          "clientInfo": {"name": "verify-image", "version": "1"}})
    post("notifications/initialized", {}, notification=True)
    names = [tool["name"] for tool in post("tools/list", {})[1]["tools"]]
    if "pluggedin_clipboard_set" not in names:
        sys.exit(f"FAIL: the built-in tools not listed: {names}")
    print(session)
    print(f"initialize: {result['serverInfo']}; tools/list: {len(names)} tools,",
          len([n for n in names if n.startswith("time__")]), "of the uvx server,",
          len([n for n in names if n.startswith("everything__")]), "of the npx server",
          file=sys.stderr)
else:
    count, label = int(sys.argv[5]), sys.argv[6]
    def call(name, arguments):
        try:
            result = post("tools/call", {"name": name, "arguments": arguments})[1]
        except urllib.error.HTTPError as error:
            # 404: the fleet does not know the session (a client then starts a new one).
            print(f"tools/call {name}: HTTP {error.code}", file=sys.stderr)
            sys.exit(4 if error.code == 404 else 1)
        text = " ".join(c.get("text", "") for c in result["content"])
        if result.get("isError"):
            sys.exit(f"FAIL: tools/call {name}: {text}")
        return text
    for n in range(count // 2):
        call("pluggedin_clipboard_set", {"name": f"{label}-{n}", "value": f"{label} {n}"})
        if f"{label} {n}" not in call("pluggedin_clipboard_get", {"name": f"{label}-{n}"}):
            sys.exit(f"FAIL: {label}-{n} not read back")
    if "before 0" not in call("pluggedin_clipboard_get", {"name": "before-0"}):
        sys.exit("FAIL: before-0, stored by the first calls, not read back")
    print(f"{count // 2 * 2 + 1} tools/call pluggedin_clipboard_set/get answered ({label})",
          file=sys.stderr)
EOF
url="http://$lb:12006/mcp"
# The replica each request went to, in order: the request lines of HAProxy's log (`backend/server`
# then the timers), not its health checks' lines, which name a server too.
routed() {
  local logs
  logs=$(podman logs "${prefix}haproxy" 2>&1)
  grep -oE 'replicas/proxy-[0-9]+ -?[0-9]+/' <<<"$logs" | cut -d ' ' -f 1 | cut -d / -f 2 || true
}
# A new session: $session, and $home, the replica its initialize landed on, which made it.
start_session() {
  before=$(routed | wc -l)
  session=$(python3 "$work/fleet_client.py" "$url" "$token" init)
  home=$(routed | sed -n "$((before + 1))p")
}
start_session
python3 "$work/fleet_client.py" "$url" "$token" calls "$session" 6 before
echo "the session's requests through HAProxy, by replica: $(routed | tail -n +$((before + 1)) |
  sort | uniq -c | xargs); its home: $home"
[ "$(routed | tail -n +$((before + 1)) | sort -u | wc -l)" = 3 ] ||
  fail "HAProxy did not send the session's requests to all three replicas"
stopped=$home
podman stop "$prefix$stopped" >/dev/null
logs=$(podman logs "$prefix$stopped" 2>&1)
echo "podman stop $stopped (SIGTERM): exit code" \
  "$(podman inspect "$prefix$stopped" --format '{{.State.ExitCode}}');" \
  "$(grep -o 'SIGTERM: draining[^"]*' <<<"$logs" | cut -c 1-60)…;" \
  "$(grep -o 'drain over ([^)]*)' <<<"$logs")"
grep -q 'SIGTERM: draining' <<<"$logs" || fail "$stopped did not drain"
before=$(routed | wc -l)
python3 "$work/fleet_client.py" "$url" "$token" calls "$session" 6 after ||
  fail "the session's calls after its home stopped (it hands its sessions over)"
home=$(routed | sed -n "$((before + 1))p")
echo "the session adopted by $home"
echo "after the home stopped, by replica: $(routed | tail -n 7 | sort | uniq -c | xargs)"
last=$(routed | tail -n 7)
grep -qx "$stopped" <<<"$last" && fail "HAProxy still sent requests to $stopped"
logs=$(podman logs "${prefix}haproxy" 2>&1)
grep -o "Server replicas/$stopped is DOWN[^.]*" <<<"$logs" | head -1 || true
# A home that dies (SIGKILL): the next request lands on a replica that adopts the session.
echo "the session's home now: $home; podman kill $home (SIGKILL)"
podman kill "$prefix$home" >/dev/null
python3 "$work/fleet_client.py" "$url" "$token" calls "$session" 2 adopted ||
  fail "the session was not adopted after its home died"
echo "after the kill, by replica: $(routed | tail -n 3 | sort | uniq -c | xargs)"

step "done: every check passed"
