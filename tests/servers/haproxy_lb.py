"""HAProxy as the tests' load balancer, on a port it binds itself.

Usage: haproxy_lb.py HAPROXY_BINARY DIR [--source ADDRESS] BACKEND_URL...

Binds 127.0.0.1:0, prints `listening on http://127.0.0.1:PORT` on stderr, writes DIR/haproxy.cfg
(round robin over the backends, no session pinning, health checks on `/health`, connection
failures retried on another backend, the client's address appended to `X-Forwarded-For`; with
`--source`, connecting to the backends from ADDRESS) with the bound socket passed as `fd@N`, and
becomes HAProxy (exec: the same process holds the port from bind to exit), in the foreground,
logging to stderr.
"""

import os
import socket
import sys
from urllib.parse import urlparse


def main() -> None:
    haproxy, directory, *backends = sys.argv[1:]
    source = []
    if backends[:1] == ["--source"]:
        source = [f"    source {backends[1]}"]
        backends = backends[2:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    servers = []
    for index, backend in enumerate(backends):
        url = urlparse(backend)
        servers.append(
            f"    server replica{index} {url.hostname}:{url.port} check inter 500ms fall 2 rise 1"
        )
    config = "\n".join(
        [
            "global",
            "    log stderr format raw local0 warning",
            "defaults",
            "    mode http",
            "    log global",
            "    timeout connect 2s",
            "    timeout client 1h",
            "    timeout server 1h",
            "    timeout tunnel 1h",
            "    retries 2",
            "    option redispatch 1",
            "frontend mcp",
            f"    bind fd@{listener.fileno()}",
            "    default_backend replicas",
            "backend replicas",
            "    balance roundrobin",
            "    option forwardfor",
            *source,
            "    option httpchk",
            "    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost",
            "    http-check expect status 200",
            *servers,
            "",
        ]
    )
    path = os.path.join(directory, "haproxy.cfg")
    with open(path, "w") as file:
        file.write(config)
    print(f"listening on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    os.execv(haproxy, [haproxy, "-db", "-f", path])


if __name__ == "__main__":
    main()
