#!/usr/bin/env python3
"""A model server with very many series, for Benchmarks/ceilings.sh: vLLM-style families (counters, gauges,
histograms) over many served models (LoRA adapters, each a distinct model_name), rendered once at start and
served on every GET. Prints the bound port as its first line.

    model-server.py [--series 100000] [--models 1000] [--port 0] [--host 127.0.0.1]

The body holds at least --series sample lines, in whole models (94 lines each).
"""
import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = ["0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75", "1.0",
           "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0", "+Inf"]
HISTOGRAMS = ["vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds",
              "vllm:time_per_output_token_seconds", "vllm:request_queue_time_seconds"]
GAUGES = ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"]
COUNTERS = ["vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total"]


def render(series, models):
    # Per model: gauges + counters + histograms (buckets, sum, count) = 3 + 3 + 4 * 22 = 94 lines.
    per_model = len(GAUGES) + len(COUNTERS) + len(HISTOGRAMS) * (len(BUCKETS) + 2)
    models = max(models, -(-series // per_model))
    families = {}  # name -> (type, [lines]); families are written whole, as the text format requires
    count = 0
    for m in range(models):
        if count >= series:
            break
        labels = f'engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct-lora-{m:05d}"'
        for g in GAUGES:
            value = (m % 17) / 17 if g.endswith("_perc") else m % 17  # kv_cache_usage_perc is a ratio (0..1)
            families.setdefault(g, ("gauge", []))[1].append(f"{g}{{{labels}}} {value:g}")
        for c in COUNTERS:
            families.setdefault(c, ("counter", []))[1].append(f"{c}{{{labels}}} {1000 + m}")
        for h in HISTOGRAMS:
            lines = families.setdefault(h, ("histogram", []))[1]
            for i, le in enumerate(BUCKETS):
                lines.append(f'{h}_bucket{{{labels},le="{le}"}} {i * 3 + m % 5}')
            lines.append(f"{h}_sum{{{labels}}} {m * 0.5}")
            lines.append(f"{h}_count{{{labels}}} {len(BUCKETS) * 3 + m % 5}")
        count += per_model
    out = []
    kept = 0
    for name, (kind, lines) in families.items():
        out.append(f"# HELP {name} {name} (simulated).")
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines)
        kept += len(lines)
    return ("\n".join(out) + "\n").encode(), kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    body, kept = render(args.series, args.models)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    print(f"model-server: {kept} series, {len(body)} bytes", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
