"""A minimal OTLP/HTTP trace receiver for Rondo's tests.

Decodes every export with the official opentelemetry-proto package and prints one JSON line per span.
Attribute values are printed as decoded; "attribute_cases" names the AnyValue oneof case each one arrived
with (null when the value was missing), so a zero, false or empty value is told apart from no value.
Modes: ok (answer 200), fail (answer 503), hang (never answer). Listens on 127.0.0.1, a free port,
announced as "listening PORT".
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MODE = sys.argv[1] if len(sys.argv) > 1 else "ok"


def any_value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def value_cases(attributes):
    return {kv.key: kv.value.WhichOneof("value") for kv in attributes}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if MODE == "hang":
            time.sleep(3600)
        if MODE == "fail":
            self.send_response(503)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    print(json.dumps({
                        "resource": resource,
                        "scope": scope_spans.scope.name,
                        "content_type": self.headers.get("Content-Type"),
                        "auth": self.headers.get("Authorization"),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "attributes": {kv.key: any_value(kv.value) for kv in span.attributes},
                        "attribute_cases": value_cases(span.attributes),
                        "events": [{"name": e.name, "time": e.time_unix_nano,
                                    "attributes": {kv.key: any_value(kv.value) for kv in e.attributes},
                                    "attribute_cases": value_cases(e.attributes)}
                                   for e in span.events],
                        "status_code": span.status.code,
                        "status_message": span.status.message,
                    }), flush=True)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
