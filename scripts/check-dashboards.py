#!/usr/bin/env python3
"""Every dashboard query and every rule expression, evaluated by a real Prometheus.

Starts, on loopback:
- the real accel-exporter on the fake NVML's 8 moving H100s (Tests/Fixtures/nvml/vary.nvml), scraping a simulated
  vLLM server (this script serves it, counters and histogram buckets growing) through --inference.targets;
- the real accel-metrics-adapter scraping that exporter;
- a fixture exposition for what cannot run here: kube-state-metrics' HPA series, and the attribution families a
  kubelet would give (accelerator_allocated and accelerator_pod_* for two of the exporter's GPUs);
- Prometheus (Debian's), scraping all three every second with dashboards/*.yaml loaded.

Then, after the first rule evaluations, every panel target of dashboards/*.json is run with Grafana's variables
substituted ($__rate_interval = 1m, multi-value variables = .*, the node variable = this node) and must parse and
return data. Variable queries (label_values) must find values. Recording rules must return data; the alerts that a
healthy node must not fire must return nothing; the others must parse.

    scripts/check-dashboards.py [BIN_DIR]      # default .build/debug

Exit status 0 when everything holds; otherwise each failing panel (dashboard, title, query, why) is listed.
Python standard library only; every process it starts is killed on exit.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug"))
NODE = "demo-node"
# Alerts a healthy node must not fire. The others depend on the fake GPUs' moving values and must only parse.
SILENT = {"AcceleratorNotAnswering", "AccelExporterCollectorFailing", "AccelExporterDown", "AccelExporterStale",
          "AccelExporterAttributionDown", "AccelMetricsAdapterDown", "HPAUnableToGetMetrics", "AcceleratorLost",
          "AcceleratorRowRemapFailure", "AcceleratorECCUncorrectable", "AcceleratorOverheating"}
# Panels that list problems and are empty on a healthy node (they must still parse).
EMPTY_WHEN_HEALTHY = {"NVIDIA XIDs in the last day"}
STARTED = time.time()
children = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    sys.exit(f"check-dashboards: {what} did not come up within {timeout}s")


def start(args, env=None, log=None):
    p = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=log or subprocess.DEVNULL,
                         stderr=subprocess.STDOUT if log else subprocess.DEVNULL, start_new_session=True)
    children.append(p)
    return p


def stop_all():
    for p in children:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


# ---------------------------------------------------------------------------------------------------------------
# Fixture expositions.

class Fixtures:
    """The simulated vLLM server and the kubelet / kube-state-metrics series, changing with time."""

    def __init__(self):
        self.gpus = []

    def vllm(self):
        t = time.time() - STARTED
        n = int(t * 5)  # five requests a second
        buckets = [(0.3, 0.2), (1.0, 0.6), (2.5, 0.9), (5.0, 0.98), ("+Inf", 1.0)]
        lines = ["# TYPE vllm:num_requests_running gauge", f'vllm:num_requests_running{{model_name="llama"}} {3 + int(t) % 4}',
                 "# TYPE vllm:num_requests_waiting gauge", f'vllm:num_requests_waiting{{model_name="llama"}} {int(t) % 7}',
                 "# TYPE vllm:kv_cache_usage_perc gauge", f'vllm:kv_cache_usage_perc{{model_name="llama"}} {0.3 + 0.05 * (int(t) % 10)}',
                 "# TYPE vllm:request_success_total counter", f'vllm:request_success_total{{model_name="llama"}} {n}',
                 "# TYPE vllm:generation_tokens_total counter", f'vllm:generation_tokens_total{{model_name="llama"}} {n * 180}']
        for family in ("e2e_request_latency_seconds", "time_to_first_token_seconds", "inter_token_latency_seconds"):
            scale = {"e2e_request_latency_seconds": 1, "time_to_first_token_seconds": 0.1, "inter_token_latency_seconds": 0.01}[family]
            lines.append(f"# TYPE vllm:{family} histogram")
            for le, share in buckets:
                bound = le if le == "+Inf" else le * scale
                lines.append(f'vllm:{family}_bucket{{le="{bound}",model_name="llama"}} {int(n * share)}')
            lines.append(f'vllm:{family}_sum{{model_name="llama"}} {n * 1.1 * scale}')
            lines.append(f'vllm:{family}_count{{model_name="llama"}} {n}')
        return "\n".join(lines) + "\n"

    def cluster(self):
        g = self.gpus
        lines = ["# TYPE accelerator_allocated gauge"]
        held = [(g[0], "train", "trainer-0", "main"), (g[1], "llm", "vllm-0", "server"), (g[1], "llm", "vllm-1", "server")]
        for gpu, ns, pod, container in held:
            lines.append(f'accelerator_allocated{{accelerator="{gpu}",vendor="nvidia",model="H100 80GB HBM3",namespace="{ns}",pod="{pod}",container="{container}"}} 1')
        lines.append("# TYPE accelerator_pod_utilization_ratio gauge")
        lines.append(f'accelerator_pod_utilization_ratio{{accelerator="{g[0]}",vendor="nvidia",model="H100 80GB HBM3",namespace="train",pod="trainer-0",container="main"}} 0.9')
        lines.append(f'accelerator_pod_utilization_ratio{{accelerator="{g[1]}",vendor="nvidia",model="H100 80GB HBM3",namespace="llm",pod="vllm-0",container="server"}} 0.3')
        lines.append("# TYPE accelerator_pod_memory_used_bytes gauge")
        lines.append(f'accelerator_pod_memory_used_bytes{{accelerator="{g[0]}",vendor="nvidia",model="H100 80GB HBM3",namespace="train",pod="trainer-0",container="main"}} 6.4e10')
        lines.append("# TYPE accel_exporter_attribution_up gauge")
        lines.append("accel_exporter_attribution_up 1")
        for name, value in (("status_desired_replicas", 3), ("status_current_replicas", 2), ("spec_max_replicas", 8)):
            lines.append(f"# TYPE kube_horizontalpodautoscaler_{name} gauge")
            lines.append(f'kube_horizontalpodautoscaler_{name}{{namespace="llm",horizontalpodautoscaler="vllm"}} {value}')
        lines.append("# TYPE kube_horizontalpodautoscaler_status_condition gauge")
        for status, value in (("true", 1), ("false", 0), ("unknown", 0)):
            lines.append(f'kube_horizontalpodautoscaler_status_condition{{namespace="llm",horizontalpodautoscaler="vllm",condition="ScalingActive",status="{status}"}} {value}')
        return "\n".join(lines) + "\n"


def serve(fixtures):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = {"/vllm": fixtures.vllm, "/cluster": fixtures.cluster}.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            data = body().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


# ---------------------------------------------------------------------------------------------------------------
# Queries.

def substitute(expr):
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "1h")
    expr = expr.replace('"$node"', f'"{NODE}"').replace("=~\"$node\"", f'=~"{NODE}"')
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def query(prometheus, expr):
    url = f"http://127.0.0.1:{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        answer = json.loads(get(url))
    except urllib.error.HTTPError as e:
        answer = json.loads(e.read().decode() or "{}")
    if answer.get("status") != "success":
        return None, answer.get("error", "no answer")
    return answer["data"]["result"], None


def panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def main():
    for tool in ("/usr/bin/prometheus", os.path.join(BIN, "accel-exporter"), os.path.join(BIN, "accel-metrics-adapter"),
                 os.path.join(BIN, "libFakeNVML.so")):
        if not os.path.exists(tool):
            sys.exit(f"check-dashboards: {tool} is missing (build first: swift build)")
    work = tempfile.mkdtemp(prefix="check-dashboards-")
    fixtures = Fixtures()
    fixture_port = serve(fixtures)
    exporter_port, adapter_port, prometheus_port = free_port(), free_port(), free_port()

    log = open(os.path.join(work, "exporter.log"), "w")
    start([os.path.join(BIN, "accel-exporter"), "--web.listen-address", f"127.0.0.1:{exporter_port}",
           "--nvml.library", os.path.join(BIN, "libFakeNVML.so"), "--no-collector.amdgpu", "--no-collector.hwmon",
           "--no-collector.kubelet", "--no-kubernetes.watch-pods", "--kubernetes.node-name", NODE,
           "--inference.targets", f"llm/vllm-0=http://127.0.0.1:{fixture_port}/vllm"],
          env={"FAKE_NVML_CONFIG": os.path.join(ROOT, "Tests/Fixtures/nvml/vary.nvml")}, log=log)
    wait_for("accel-exporter", lambda: "accelerator_up{" in get(f"http://127.0.0.1:{exporter_port}/metrics"))
    text = get(f"http://127.0.0.1:{exporter_port}/metrics")
    fixtures.gpus = sorted(set(re.findall(r'^accelerator_up\{accelerator="([^"]+)"', text, re.M)))

    start([os.path.join(BIN, "accel-metrics-adapter"), "--secure-port", "0", "--insecure-port", str(adapter_port),
           "--bind-address", "127.0.0.1", "--exporters.targets", f"127.0.0.1:{exporter_port}", "--metric-resolution", "1s"],
          log=open(os.path.join(work, "adapter.log"), "w"))
    wait_for("accel-metrics-adapter", lambda: "accel_metrics_adapter_" in get(f"http://127.0.0.1:{adapter_port}/metrics"))

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [os.path.join(ROOT, "dashboards", f) for f in sorted(os.listdir(os.path.join(ROOT, "dashboards"))) if f.endswith(".yaml")],
        "scrape_configs": [
            {"job_name": "accel-exporter", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"], "labels": {"node": NODE}}]},
            {"job_name": "cluster-fixtures", "honor_labels": True, "metrics_path": "/cluster",
             "static_configs": [{"targets": [f"127.0.0.1:{fixture_port}"], "labels": {"node": NODE}}]},
            {"job_name": "accel-metrics-adapter",
             "static_configs": [{"targets": [f"127.0.0.1:{adapter_port}"]}]},
        ],
    }
    config_path = os.path.join(work, "prometheus.yml")
    with open(config_path, "w") as f:
        json.dump(config, f)  # JSON is YAML
    start(["/usr/bin/prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={work}/data",
           f"--web.listen-address=127.0.0.1:{prometheus_port}"], log=open(os.path.join(work, "prometheus.log"), "w"))
    wait_for("prometheus", lambda: json.loads(get(f"http://127.0.0.1:{prometheus_port}/api/v1/targets"))["status"] == "success")
    # Rates need two samples inside 1m and the recording rules a few evaluations: wait for the slowest input.
    wait_for("data in prometheus", lambda: (query(prometheus_port, "rate(inference_requests_total[1m])")[0] or [])
             and (query(prometheus_port, "namespace_model_name:inference_request_duration_seconds:p95_5m")[0] or [])
             and (query(prometheus_port, "accel_metrics_adapter_targets")[0] or []), timeout=90)
    time.sleep(3)

    failures = []
    checked = 0
    for name in sorted(os.listdir(os.path.join(ROOT, "dashboards"))):
        if not name.endswith(".json"):
            continue
        board = json.load(open(os.path.join(ROOT, "dashboards", name)))
        for var in board["templating"]["list"]:
            q = var.get("query")
            if var.get("type") != "query":
                continue
            text = q["query"] if isinstance(q, dict) else q
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", text.strip())
            if not m:
                failures.append(f"{name}: variable {var['name']}: not a label_values query: {text}")
                continue
            result, error = query(prometheus_port, substitute(m.group(1)))
            checked += 1
            if error or not any(m.group(2) in r["metric"] for r in result):
                failures.append(f"{name}: variable {var['name']}: {text}: {error or 'no values'}")
        for p in panels(board):
            if p.get("type") == "row":
                continue
            if not p.get("description"):
                failures.append(f"{name}: panel {p['title']!r} has no description")
            if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                failures.append(f"{name}: panel {p['title']!r} has no unit")
            for t in p.get("targets", []):
                expr = substitute(t["expr"])
                result, error = query(prometheus_port, expr)
                checked += 1
                if error:
                    failures.append(f"{name}: {p['title']!r}: does not parse: {error}\n    {expr}")
                elif not result and p["title"] not in EMPTY_WHEN_HEALTHY:
                    failures.append(f"{name}: {p['title']!r}: no data\n    {expr}")

    import_rules = json.loads(get(f"http://127.0.0.1:{prometheus_port}/api/v1/rules"))["data"]["groups"]
    for group in import_rules:
        for rule in group["rules"]:
            label = rule.get("name")
            result, error = query(prometheus_port, rule["query"])
            checked += 1
            if error or rule.get("health") == "err":
                failures.append(f"rule {label}: {error or rule.get('lastError')}")
            elif rule["type"] == "recording" and not result:
                failures.append(f"recording rule {label}: no data\n    {rule['query']}")
            elif rule["type"] == "alerting" and label in SILENT and result:
                failures.append(f"alert {label} fires on a healthy node: {result[:2]}")

    if failures:
        print(f"check-dashboards: {len(failures)} of {checked} checks failed (logs in {work}):")
        for f in failures:
            print("  - " + f)
        return 1
    print(f"check-dashboards: {checked} dashboard queries, variables and rules evaluated by Prometheus: all parse and return data; "
          f"{len(SILENT)} alerts silent on a healthy node")
    return 0


if __name__ == "__main__":
    try:
        status = main()
    finally:
        stop_all()
    sys.exit(status)
