# The proxy's container image: the release binary on a slim Debian with what common stdio MCP
# servers are started with (`npx` on Node, `uvx` on Python), running as a non-root user, its state
# in the volume /data, serving one client on stdio by default:
#
#   docker build -t pluggedin-mcp-proxy .
#   docker run -i --rm -v "$PWD/config:/config:ro" -v pluggedin-data:/data \
#     pluggedin-mcp-proxy --config /config/mcp.json
#
# Build arguments (`--build-arg NAME=VALUE`):
#   RUST_VERSION  the Rust toolchain of the build stage (the `rust:<version>-slim-<suite>` image);
#                 at least Cargo.toml's rust-version
#   DEBIAN_SUITE  the Debian release of every stage (`trixie`, with Node 20; `bookworm` would
#                 bring Node 18 and was not tried). One suite for all: the binary then never needs
#                 a newer glibc than the final stage has
#   NPM_VERSION   npm (and its `npx`) from the npm registry, over Debian's `nodejs`; Debian's own
#                 npm package brings about 350 packages and 110 MiB more, and an older npm
#   UV_VERSION    `uv` and `uvx` from PyPI (not packaged by Debian)
#   APP_UID       uid and gid of the user `pluggedin` the proxy runs as
#
# The build needs crates.io, the Debian mirror, the npm registry and PyPI; the image needs none of
# them to start, but `npx`/`uvx` servers fetch their packages at their first start.

ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=trixie

FROM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_SUITE} AS build
WORKDIR /src
# The dependencies are built in a layer of their own, keyed on Cargo.toml and Cargo.lock alone:
# every target the manifest names gets a stub `main` (cargo refuses a manifest whose benches or
# tests are missing, even to build one binary), found by reading the manifest's [[bin]],
# [[bench]], [[test]] and [[example]] tables: `path`, else the directory cargo assumes for the
# `name`. The binary is then built once against the stubs. A change to src/ rebuilds only this
# package (and the release profile's whole-program LTO link).
COPY Cargo.toml Cargo.lock ./
RUN awk -F '"' ' \
        function flush() { \
            if (kind != "") print (path != "" ? path : dir[kind] "/" name ".rs"); kind = "" }; \
        BEGIN { dir["bin"] = "src/bin"; dir["bench"] = "benches"; dir["test"] = "tests"; \
                dir["example"] = "examples"; print "src/main.rs"; print "src/lib.rs" }; \
        /^\[\[[a-z]+\]\]/ { flush(); kind = substr($0, 3, index($0, "]]") - 3); \
                            name = ""; path = ""; next }; \
        /^\[/ { flush(); next }; \
        kind != "" && /^name *=/ { name = $2 }; \
        kind != "" && /^path *=/ { path = $2 }; \
        END { flush() }' Cargo.toml > /tmp/targets \
    && while read -r target; do \
           mkdir -p "$(dirname "$target")" && echo 'fn main() {}' > "$target"; \
       done < /tmp/targets \
    && cargo build --release --locked --bin pluggedin-mcp-proxy \
    && rm -r src
COPY src ./src
# The sources keep their own modification times, older than the stubs' build: touched so cargo
# sees them as changed.
RUN touch src/lib.rs src/main.rs \
    && cargo build --release --locked --bin pluggedin-mcp-proxy

# npm and uv, installed where they can be copied from; this stage's own packages stay behind.
FROM docker.io/library/debian:${DEBIAN_SUITE}-slim AS tools
ARG NPM_VERSION=10.9.9
ARG UV_VERSION=0.13.10
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates nodejs npm python3-pip \
    && npm install --global --no-fund --no-audit --prefix /opt/npm "npm@${NPM_VERSION}" \
    && pip install --no-cache-dir --no-deps --only-binary=:all: --target /opt/uv "uv==${UV_VERSION}"

FROM docker.io/library/debian:${DEBIAN_SUITE}-slim
ARG APP_UID=10001
# tini is PID 1: it forwards SIGTERM/SIGINT to the proxy and reaps the processes that servers
# leave orphaned (an `npx` whose `node` outlived it), which a PID 1 that is the proxy would not.
# tzdata: servers that work with local times (`mcp-server-time`) read the system's zone files.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates nodejs python3 tini tzdata \
    && rm -rf /var/lib/apt/lists/*
COPY --from=tools /opt/npm/ /usr/local/
COPY --from=tools /opt/uv/bin/uv /opt/uv/bin/uvx /usr/local/bin/
# /data is made before VOLUME so that a new volume starts owned by the user. HOME stays out of it:
# npm's and uv's caches there are the container's own, rebuilt after a re-creation.
RUN groupadd --gid "${APP_UID}" pluggedin \
    && useradd --uid "${APP_UID}" --gid pluggedin --create-home --home-dir /home/pluggedin \
        --shell /usr/sbin/nologin pluggedin \
    && install -d -o pluggedin -g pluggedin -m 0700 /data
COPY --from=build /src/target/release/pluggedin-mcp-proxy /usr/local/bin/pluggedin-mcp-proxy

# The store (store.db), OAuth tokens, server ids, the console's socket: everything the proxy
# keeps. With PLUGGEDIN_DATABASE_URL the store is in PostgreSQL and /data keeps the rest.
ENV PLUGGEDIN_DATA_DIR=/data \
    LANG=C.UTF-8
VOLUME ["/data"]
WORKDIR /home/pluggedin
# Numeric, so that a runtime that refuses root images (Kubernetes' runAsNonRoot) can check it.
USER ${APP_UID}:${APP_UID}
# Streamable HTTP, when started with `--transport streamable-http --host 0.0.0.0`. The listen
# address stays loopback by default, as outside a container: beyond it the proxy wants
# `--require-api-auth`, so opening it is a decision made on the command line.
EXPOSE 12006
LABEL org.opencontainers.image.title="pluggedin-mcp-proxy" \
      org.opencontainers.image.description="A fast, self-contained MCP aggregating proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pluggedin-mcp-proxy"]
