"""A real OTLP/HTTP trace receiver for the tracing tests: decodes what arrives with the official `opentelemetry-proto`
package and writes one JSON line per span.

  python otlp_receiver.py --port PORT --out FILE

Serves POST /v1/traces (Content-Type application/x-protobuf, gzip or not; application/json is refused with 415 so a
test sees which encoding the gateway used). Each span becomes one line of FILE:
  {"traceId": hex, "spanId": hex, "parentSpanId": hex or "", "name", "kind", "attributes": {key: value},
   "status": code, "resource": {key: value}, "start": unix nanos, "end": unix nanos}
It prints "listening PORT" on stdout once it listens (with --port 0, the port it got). SIGTERM ends it.
"""

import argparse
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse


def any_value(value):
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: any_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(items):
    return {item.key: any_value(item.value) for item in items}


class Handler(BaseHTTPRequestHandler):
    out = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 16 << 20:
            self.send_response(413)
            self.end_headers()
            return
        body = self.rfile.read(length)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        if "protobuf" not in (self.headers.get("Content-Type") or ""):
            self.send_response(415)
            self.end_headers()
            return
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        lines = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(json.dumps({
                        "traceId": span.trace_id.hex(), "spanId": span.span_id.hex(), "parentSpanId": span.parent_span_id.hex(),
                        "name": span.name, "kind": span.kind, "attributes": attributes(span.attributes),
                        "status": span.status.code, "resource": resource,
                        "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                    }))
        with open(Handler.out, "a") as handle:
            for line in lines:
                handle.write(line + "\n")
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    Handler.out = args.out
    open(args.out, "a").close()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
