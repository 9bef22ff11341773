"""An OTLP/HTTP trace receiver for the tests: accepts `POST /v1/traces` in protobuf, parses each
request with the official OpenTelemetry protobuf definitions (PyPI `opentelemetry-proto`) and
prints one line per span on stderr: `span ` and a JSON object (ids in hex, attributes as plain
values). It binds port 0 and prints `listening on http://127.0.0.1:PORT` on stderr. Anything it cannot parse is answered
400 and reported on stderr, so a malformed export fails the test that reads its spans.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

# Requests are handled on several threads; `print` writes a line and its newline separately, so two
# threads' lines could share one. Each line is written whole, under this lock.
WRITING = threading.Lock()


def report(line):
    with WRITING:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
            report(f"refused {self.path} {self.headers.get('content-type')}")
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # noqa: BLE001 - any parse failure is the test's failure
            report(f"unparsable export: {error}")
            self.send_response(400)
            self.end_headers()
            return
        for resource_spans in request.resource_spans:
            resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line = {
                        "service": resource.get("service.name"),
                        "scope": scope_spans.scope.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "trace_state": span.trace_state,
                        "name": span.name,
                        "kind": KINDS.get(span.kind, str(span.kind)),
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "attributes": {kv.key: value_of(kv.value) for kv in span.attributes},
                        "status": {"code": span.status.code, "message": span.status.message},
                        "flags": span.flags,
                    }
                    report("span " + json.dumps(line))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
server.serve_forever()
