#!/usr/bin/env python3
"""An OTLP metrics receiver on loopback for the exporter's tests, decoding with PyPI's opentelemetry-proto.

OTLP/HTTP (POST /v1/metrics, binary protobuf, gzip or not) always; OTLP/gRPC as well with --grpc-port when grpcio is
installed. Every request that decodes is appended to --out as one JSON line: {"transport", "headers", "request",
"target"}, the request as protobuf's JSON mapping with proto field names (so a test reads exactly what a collector
would), the target as the request line gave it: `/v1/metrics`, or `http://host:port/v1/metrics` from a client that
took this receiver for its forward proxy (HTTP/1.1 servers accept that absolute form).

Misbehaviour, for the failure tests:
  --refuse N --refuse-status 429,503 --retry-after S   the first N requests get those statuses (in turn), then 200
  --hang                                               read the request, never answer (the connection stays open)
  --partial N                                          answer 200 with partial_success.rejected_data_points = N

Prints "http <port>" (and "grpc <port>") on stdout once listening; runs until killed.
"""
import argparse
import gzip
import http.server
import json
import sys
import threading
import time
import urllib.parse

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

MAX_BODY = 64 << 20
lock = threading.Lock()
state = {"seen": 0}


def record(out, transport, headers, request, target=None):
    line = json.dumps({
        "transport": transport,
        "headers": headers,
        "request": MessageToDict(request, preserving_proto_field_name=True),
        "target": target,
    })
    with lock:
        with open(out, "a") as f:
            f.write(line + "\n")


def next_refusal(args):
    """The status the next request gets: a refusal while N are left, else None."""
    with lock:
        state["seen"] += 1
        n = state["seen"]
    if n <= args.refuse:
        statuses = args.refuse_status
        return statuses[(n - 1) % len(statuses)]
    return None


def response_bytes(args):
    response = metrics_service_pb2.ExportMetricsServiceResponse()
    if args.partial:
        response.partial_success.rejected_data_points = args.partial
        response.partial_success.error_message = "refused by the test receiver"
    return response.SerializeToString()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def do_POST(self):
        args = self.server.args
        length = int(self.headers.get("Content-Length", "0"))
        if length < 0 or length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        if args.hang:
            time.sleep(3600)
            return
        refusal = next_refusal(args)
        if refusal is not None:
            self.send_response(refusal)
            if args.retry_after is not None:
                self.send_header("Retry-After", str(args.retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = self.path
        path = urllib.parse.urlsplit(target).path if target.startswith(("http://", "https://")) else target
        if path != "/v1/metrics":
            self.send_error(404)
            return
        if self.headers.get("Content-Encoding", "") == "gzip":
            body = gzip.decompress(body)
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # a request the decoder refuses is the test's failure to see
            self.send_error(400, f"does not decode: {error}")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        record(args.out, "http", headers, request, target)
        payload = response_bytes(args)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def serve_grpc(args):
    import grpc
    from concurrent import futures
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc

    class Service(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):
            if args.hang:
                time.sleep(3600)
            refusal = next_refusal(args)
            if refusal is not None:
                code = grpc.StatusCode.RESOURCE_EXHAUSTED if refusal == 429 else grpc.StatusCode.UNAVAILABLE
                context.abort(code, "refused by the test receiver")
            headers = {k: v for k, v in context.invocation_metadata()}
            record(args.out, "grpc", headers, request)
            return metrics_service_pb2.ExportMetricsServiceResponse.FromString(response_bytes(args))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()
    return server, port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--grpc-port", type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--refuse", type=int, default=0)
    parser.add_argument("--refuse-status", type=lambda s: [int(x) for x in s.split(",")], default=[503])
    parser.add_argument("--retry-after", type=int)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--partial", type=int, default=0)
    args = parser.parse_args()
    open(args.out, "a").close()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.args = args
    print(f"http {server.server_address[1]}", flush=True)
    if args.grpc_port is not None:
        _, port = serve_grpc(args)
        print(f"grpc {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
