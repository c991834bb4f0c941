#!/usr/bin/env python3
"""Every dashboard query and every rule expression, evaluated by a real Prometheus scraping the real programs.

    scripts/check-dashboards.py [BIN_DIR] [--keep]     # BIN_DIR: default .build/debug; --keep: keep the work dir

Starts, on loopback (free ports), each process in its own session (stopped on exit, also on SIGTERM, SIGINT or after
DEADLINE_S: SIGTERM to the session, SIGKILL after 5 s; the work directory is removed unless a check failed):
- demo-node: the real accel-exporter on the fake NVML's 8 moving H100s (Tests/Fixtures/nvml/vary.nvml), scraping a
  simulated vLLM server (served by this script, counters and histogram buckets growing) through --inference.targets;
- amd-node: the real accel-exporter on the simulated MI300X node of `make run` (accel-simulator describe mi300x-8,
  umockdev-run, accel-simulator animate);
- fault-node: the real accel-exporter on a fake-NVML machine with faults (FAULT_GPUS); part-way through, a GPU's
  uncorrectable ECC count grows, then the exporter restarts under a new instance (file_sd, as a new DaemonSet pod)
  with one GPU gone from the driver and one listed but not answering;
- stale-node: the real accel-exporter sampling once an hour (its samples go stale), with the kubelet collector on and
  no kubelet socket (attribution down, the kubelet collector failing);
- gone-node and a second adapter replica: scrape targets on closed ports (up == 0);
- the real accel-metrics-adapter scraping the demo and AMD exporters;
- fixture expositions for what cannot run here: kube-state-metrics' HPA series (one HPA healthy, one unable to get
  its metrics) and the attribution families a kubelet would give (accelerator_allocated, accelerator_pod_* and
  accel_exporter_attribution_up for the healthy nodes; an idle GPU of the fault node allocated);
- Prometheus (Debian's), scraping all of them every second with dashboards/*.yaml loaded.

Then it checks:
- dashboards: schema and datasource (the `datasource` variable, no UID of a live Grafana), a stable uid, a
  description and a unit on every panel; every variable query finds values; every panel target, with Grafana's
  variables substituted ($__rate_interval = 1m, $node = each healthy node, multi-value variables = .*), parses and
  returns data, and so does every series selector inside it (an `or vector(0)` cannot hide a wrong name);
- rules: every recording rule returns data; every alert has summary, description and runbook annotations; each
  alert in FAULTS returns data and only for its fault (so it stays silent on the healthy nodes, adapter and HPA);
  the alerts in FIRES_ON_DEMO return data; every alert is in one of the two;
- names: every metric name in a dashboard, a rule or a fixture exposition is in the documentation (README.md and
  docs/*.md: the metric reference is docs/metrics.md, the adapter's in docs/adapter.md), in the exporter's or
  adapter's sources, a recording rule, or a kube-state-metrics family listed here;
- tests: dashboards/tests/*.yaml has a firing and a silent case for every alert and a test for every recording rule.

Exit status 0 when everything holds; otherwise each failure (dashboard, panel title, query, why) is listed.
Python standard library only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DASHBOARDS = os.path.join(ROOT, "dashboards")
NVML_FIXTURES = os.path.join(ROOT, "Tests/Fixtures/nvml")
DEADLINE_S = 420

DEMO, AMD, FAULT, STALE, GONE = "demo-node", "amd-node", "fault-node", "stale-node", "gone-node"
HEALTHY_NODES = (DEMO, AMD)
BROKEN_HPA = "broken"

# The fault node (h100x8.nvml), in three acts. From the start: an XID 79 on GPU 0, GPU 3 at 95 °C and thermally
# slowed down, a failed row remap on GPU 4, GPU 5 busy with almost no SM active (GPM) and allocated; GPU 6 idle and
# allocated (fixture). Then, while the same exporter runs,
# GPU 1's uncorrectable ECC count grows. Then the exporter restarts on another port (as a DaemonSet pod does, with a
# new instance label), GPU 7 gone from the driver and GPU 2 listed but not answering.
FAULT_GPUS = {0: {"xid": "79"}, 3: {"temperature": "95", "clocks_event_reasons": "0x40"}, 4: {"remapped_rows": "0 1 0 1"},
              5: {"utilization": "97 40", "gpm": "2 0.5"}}
FAULT_ECC = {1: {"ecc_aggregate": "0 2"}}
FAULT_RESTART = {2: {"fail": "nvmlDeviceGetUtilizationRates GPU_IS_LOST"}}
IDLE_GPU, REMOVED_GPU, NOT_COMPUTING_GPU = 6, 7, 5

# Alerts that must fire for a fault made here, and for nothing else: every result must carry these labels. The
# healthy nodes, the healthy adapter and the healthy HPA must stay silent. (The adapter's entry is filled in at run
# time with the closed port's address.)
FAULTS = {
    "AcceleratorNotAnswering": {"node": FAULT},
    "AcceleratorLost": {"node": FAULT},
    "AcceleratorXIDError": {"node": FAULT, "xid": "79"},
    "AcceleratorXIDErrorCritical": {"node": FAULT, "xid": "79"},
    "AcceleratorECCUncorrectable": {"node": FAULT, "type": "ecc_uncorrected"},
    "AcceleratorThermalThrottling": {"node": FAULT, "reason": "hw_thermal_slowdown"},
    "AcceleratorOverheating": {"node": FAULT},
    "AcceleratorRowRemapFailure": {"node": FAULT},
    "AcceleratorAllocatedButIdle": {"node": FAULT},
    "AcceleratorAllocatedNotComputing": {"node": FAULT, "pod": "stuck-0"},
    "AccelExporterCollectorFailing": {"node": STALE, "collector": "kubelet"},
    "AccelExporterAttributionDown": {"node": STALE},
    "AccelExporterStale": {"node": STALE},
    "AccelExporterDown": {"node": GONE},
    "AccelMetricsAdapterDown": {},
    "HPAUnableToGetMetrics": {"horizontalpodautoscaler": BROKEN_HPA},
}
# Alerts the demo's own readings trigger (vary.nvml has power-capped GPUs and one with a row remap pending): their
# expressions must return data.
FIRES_ON_DEMO = {"AcceleratorThrottled", "AcceleratorRowRemapPending"}
# Node-dashboard panels that stay empty for the simulated MI300X node, and why. They must still parse, and each
# must fill for the demo node; one that fills for the AMD node too must leave this list.
NO_DATA = {(AMD, "Throttle reasons"): "the simulated MI300X's gpu_metrics has no throttle status",
           (AMD, "Errors"): "amdgpu RAS counters are not read yet (docs/metrics.md: `accelerator_errors_total`, RAS: later issue)",
           **{(AMD, title): "saturation comes from NVIDIA GPM; amdgpu's gpu_metrics has no SM-level activity"
              for title in ("SM activity", "Tensor activity", "SM occupancy", "Memory bandwidth")}}
# kube-state-metrics families the dashboards and alerts read (not ours, so not in docs/metrics.md).
KUBE_STATE_METRICS = {"kube_horizontalpodautoscaler_status_desired_replicas", "kube_horizontalpodautoscaler_status_current_replicas",
                      "kube_horizontalpodautoscaler_spec_max_replicas", "kube_horizontalpodautoscaler_status_condition"}

STARTED = time.time()
children = []


class CheckError(Exception):
    """Setup failed: the message says what, and which log to read."""


class Stopped(BaseException):
    """A signal or the deadline: not an Exception, so no `except Exception` on the way swallows it."""


# ---------------------------------------------------------------------------------------------------------------
# Processes.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_for(what, check, timeout=60, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise CheckError(f"{what} did not come up within {timeout}s" + (f"; the end of {log}:\n{tail(log)}" if log else ""))


def start(args, log, env=None):
    with open(log, "w") as out:
        p = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    children.append(p)
    return p


def stop_all():
    """SIGTERM to each child's process group (umockdev-run removes its testbed, Prometheus closes its database),
    then SIGKILL to whatever is left after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        for p in children:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.time() + grace
        for p in children:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass


def on_signal(signum, frame):
    raise Stopped(f"stopped by signal {signum}")


def on_alarm(signum, frame):
    raise Stopped(f"gave up after {DEADLINE_S}s")


# ---------------------------------------------------------------------------------------------------------------
# Fixtures.

def nvml_machine(source, tag, edits, drop=()):
    """h100x8.nvml with the devices' UUIDs made this node's own, `edits` applied per GPU and `drop` left out."""
    text = open(source).read()
    head, *blocks = re.split(r"(?m)^device[ \t]*\n", text)
    out = [head]
    for i, block in enumerate(blocks):
        if i in drop:
            continue
        lines = block.rstrip("\n").split("\n")
        lines = [re.sub(r"^uuid GPU-..", f"uuid GPU-{tag}", line) for line in lines]
        for key, value in edits.get(i, {}).items():
            at = [n for n, line in enumerate(lines) if line.split()[:1] == [key]]
            if at and key not in ("xid", "fail", "gpm"):
                lines[at[0]] = f"{key} {value}"
            else:
                lines.append(f"{key} {value}")
        out.append("device\n" + "\n".join(lines) + "\n\n")
    return "".join(out)


def merge(*edits):
    """Per-GPU edits combined: {gpu: {key: value}} …"""
    out = {}
    for e in edits:
        for gpu, changes in e.items():
            out.setdefault(gpu, {}).update(changes)
    return out


def uuids(machine):
    return re.findall(r"(?m)^uuid (GPU-\S+)", machine)


def write_atomically(path, text):
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


class Fixtures:
    """The simulated vLLM server and the kubelet / kube-state-metrics series, changing with time."""

    def __init__(self):
        self.demo_gpus, self.amd_gpus, self.fault_idle_gpu, self.fault_busy_gpu = [], [], "", ""

    def vllm(self):
        t = time.time() - STARTED
        n = int(t * 5)  # five requests a second
        buckets = [(0.3, 0.2), (1.0, 0.6), (2.5, 0.9), (5.0, 0.98), ("+Inf", 1.0)]
        lines = ["# TYPE vllm:num_requests_running gauge", f'vllm:num_requests_running{{model_name="llama"}} {3 + int(t) % 4}',
                 "# TYPE vllm:num_requests_waiting gauge", f'vllm:num_requests_waiting{{model_name="llama"}} {int(t) % 7}',
                 "# TYPE vllm:kv_cache_usage_perc gauge", f'vllm:kv_cache_usage_perc{{model_name="llama"}} {0.3 + 0.05 * (int(t) % 10)}',
                 "# TYPE vllm:request_success_total counter", f'vllm:request_success_total{{model_name="llama"}} {n}',
                 "# TYPE vllm:generation_tokens_total counter", f'vllm:generation_tokens_total{{model_name="llama"}} {n * 180}']
        for family, scale in (("e2e_request_latency_seconds", 1), ("time_to_first_token_seconds", 0.1),
                              ("inter_token_latency_seconds", 0.01), ("request_queue_time_seconds", 0.05)):
            lines.append(f"# TYPE vllm:{family} histogram")
            for le, share in buckets:
                bound = le if le == "+Inf" else le * scale
                lines.append(f'vllm:{family}_bucket{{le="{bound}",model_name="llama"}} {int(n * share)}')
            lines.append(f'vllm:{family}_sum{{model_name="llama"}} {n * 1.1 * scale}')
            lines.append(f'vllm:{family}_count{{model_name="llama"}} {n}')
        return "\n".join(lines) + "\n"

    def cluster(self):
        g, a = self.demo_gpus, self.amd_gpus
        h100, mi300 = 'vendor="nvidia",model="H100 80GB HBM3"', 'vendor="amd",model="MI300X"'
        # (node, accelerator, vendor/model, namespace, pod, container, utilization share, memory share)
        held = [(DEMO, g[0], h100, "train", "trainer-0", "main", 0.9, 6.4e10),
                (DEMO, g[1], h100, "llm", "vllm-0", "server", 0.3, 2.1e10),
                (DEMO, g[1], h100, "llm", "vllm-1", "server", None, None),  # shared, no per-process data: no share
                (AMD, a[0], mi300, "train", "trainer-1", "main", 0.7, 1.5e11),
                (FAULT, self.fault_idle_gpu, h100, "notebooks", "forgotten-0", "jupyter", 0.0, 0.0),
                (FAULT, self.fault_busy_gpu, h100, "ml", "stuck-0", "main", 0.97, 3.2e10)]
        lines = ["# TYPE accelerator_allocated gauge"]
        lines += [f'accelerator_allocated{{node="{n}",accelerator="{d}",{vm},namespace="{ns}",pod="{p}",container="{c}"}} 1'
                  for n, d, vm, ns, p, c, _, _ in held]
        for family, column in (("accelerator_pod_utilization_ratio", 6), ("accelerator_pod_memory_used_bytes", 7)):
            lines.append(f"# TYPE {family} gauge")
            lines += [f'{family}{{node="{h[0]}",accelerator="{h[1]}",{h[2]},namespace="{h[3]}",pod="{h[4]}",container="{h[5]}"}} {h[column]}'
                      for h in held if h[column] is not None]
        lines.append("# TYPE accel_exporter_attribution_up gauge")
        lines += [f'accel_exporter_attribution_up{{node="{n}"}} 1' for n in HEALTHY_NODES]
        hpas = [("llm", "vllm", 3, 2, 8, "true"), ("llm", BROKEN_HPA, 2, 2, 4, "false")]
        for name, column in (("status_desired_replicas", 2), ("status_current_replicas", 3), ("spec_max_replicas", 4)):
            lines.append(f"# TYPE kube_horizontalpodautoscaler_{name} gauge")
            lines += [f'kube_horizontalpodautoscaler_{name}{{namespace="{h[0]}",horizontalpodautoscaler="{h[1]}"}} {h[column]}' for h in hpas]
        lines.append("# TYPE kube_horizontalpodautoscaler_status_condition gauge")
        for ns, hpa, _, _, _, active in hpas:
            for status in ("true", "false", "unknown"):
                lines.append(f'kube_horizontalpodautoscaler_status_condition{{namespace="{ns}",horizontalpodautoscaler="{hpa}",'
                             f'condition="ScalingActive",status="{status}"}} {int(status == active)}')
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
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


# ---------------------------------------------------------------------------------------------------------------
# Queries.

def substitute(expr, node):
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "1h")
    expr = re.sub(r"\$\{?node\}?", node, expr)
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def query(prometheus, expr):
    url = f"http://127.0.0.1:{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        answer = json.loads(get(url, timeout=10))
    except urllib.error.HTTPError as e:
        answer = json.loads(e.read().decode() or "{}")
    if answer.get("status") != "success":
        return None, answer.get("error", "no answer")
    return answer["data"]["result"], None


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            "inf", "nan"}


def selectors(expr):
    """The instant-vector selectors inside a PromQL expression (metric name and matchers), as written."""
    masked = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "_" * (len(m.group()) - 2) + '"', expr)
    masked = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", lambda m: " " * len(m.group()), masked)
    masked = re.sub(r"\[[^\]]*\]", lambda m: " " * len(m.group()), masked)
    found = []
    for m in re.finditer(r"(?<![\w:.\"])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", masked):
        name, rest = m.group(1), masked[m.end():].lstrip()
        if name in KEYWORDS or (not m.group(2) and rest.startswith("(")):
            continue
        found.append(expr[m.start():m.end()].strip())
    return found


def metric_name(selector):
    return re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", selector).group()


def known_names(recorded):
    """Names the documentation (README.md, docs/*.md: the metric reference is docs/metrics.md), the schema
    (docs/metric-schema.json) or the adapter's sources spell out, the recording rules, kube-state-metrics."""
    docs = [os.path.join(ROOT, "README.md")] + sorted(
        os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
    names = set()
    for path in docs:
        names |= set(re.findall(r"[a-z][a-z0-9_]*", open(path).read()))
    schema = json.load(open(os.path.join(ROOT, "docs", "metric-schema.json")))
    for family in schema["families"].values():
        names |= {family["name"], *family["sample_names"]}
    for top in ("Adapter",):
        for base, _, files in os.walk(os.path.join(ROOT, "Sources", top)):
            for f in files:
                if f.endswith(".swift"):
                    names |= set(re.findall(r'"([a-z][a-z0-9_]*)', open(os.path.join(base, f), errors="replace").read()))
    return names | set(recorded) | KUBE_STATE_METRICS


def unknown(name, known):
    base = re.sub(r"_(total|bucket|count|sum)$", "", name)
    return name not in known and base not in known


def test_coverage(alerts, recorded):
    """Every alert has a firing and a silent case in dashboards/tests, and every recording rule a test."""
    firing, silent, exprs = set(), set(), []
    tests = os.path.join(DASHBOARDS, "tests")
    for name in sorted(os.listdir(tests)):
        if not name.endswith(".yaml"):
            continue
        text = open(os.path.join(tests, name)).read()
        for m in re.finditer(r"alertname:\s*(\w+)\s*\n\s*exp_alerts:\s*(\[\s*\])?", text):
            (silent if m.group(2) else firing).add(m.group(1))
        exprs += re.findall(r"(?m)^\s*-?\s*expr:\s*(.+)$", text)
    problems = [f"alert {a} has no firing case in dashboards/tests" for a in sorted(alerts) if a not in firing]
    problems += [f"alert {a} has no silent case in dashboards/tests" for a in sorted(alerts) if a not in silent]
    problems += [f"recording rule {r} has no promql_expr_test in dashboards/tests" for r in sorted(recorded)
                 if not any(re.search(rf"(?<![\w:]){re.escape(r)}(?![\w:])", e) for e in exprs)]
    return problems


def panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def check_dashboard(name, board, prometheus, known, failures, seen_uids):
    """Schema, datasource, descriptions and units; then every variable and target through Prometheus."""
    checked = 0
    if not board.get("uid") or not board["uid"].startswith("accelmetrics-") or board["uid"] in seen_uids:
        failures.append(f"{name}: uid {board.get('uid')!r} missing, not accelmetrics-…, or used twice")
    seen_uids.add(board.get("uid"))
    if board.get("schemaVersion", 0) < 39:
        failures.append(f"{name}: schemaVersion {board.get('schemaVersion')} (want 39 or later)")
    variables = board.get("templating", {}).get("list", [])
    if not any(v.get("name") == "datasource" and v.get("type") == "datasource" and v.get("query") == "prometheus" for v in variables):
        failures.append(f"{name}: no `datasource` variable of type datasource (prometheus)")
    uids = {json.dumps(d) for d in re.findall(r'"datasource": (\{[^{}]*\})', json.dumps(board))}
    if uids - {json.dumps({"type": "prometheus", "uid": "${datasource}"})}:
        failures.append(f"{name}: a datasource other than ${{datasource}}: {sorted(uids)}")
    node_scoped = "$node" in json.dumps(board)
    for var in variables:
        if var.get("type") != "query":
            continue
        q = var.get("query")
        text = q["query"] if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", text.strip())
        if not m:
            failures.append(f"{name}: variable {var['name']}: not a label_values query: {text}")
            continue
        result, error = query(prometheus, substitute(m.group(1), DEMO))
        checked += 1
        if error or not any(m.group(2) in r["metric"] for r in result):
            failures.append(f"{name}: variable {var['name']}: {text}: {error or 'no values'}")
        elif var["name"] == "node" and not set(HEALTHY_NODES) <= {r["metric"].get("node") for r in result}:
            failures.append(f"{name}: variable node does not list {HEALTHY_NODES}: {text}")
    for p in panels(board):
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        if not p.get("description"):
            failures.append(f"{name}: panel {title!r} has no description")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            failures.append(f"{name}: panel {title!r} has no unit")
        if not p.get("targets"):
            failures.append(f"{name}: panel {title!r} has no query")
        for t in p.get("targets", []):
            for node in HEALTHY_NODES if node_scoped else (DEMO,):
                where = f"{name}: {title!r}" + (f" ($node={node})" if node_scoped else "")
                expr = substitute(t["expr"], node)
                result, error = query(prometheus, expr)
                checked += 1
                if error:
                    failures.append(f"{where}: does not parse: {error}\n      {expr}")
                    continue
                excused = (node, title) in NO_DATA if node_scoped else False
                if not result and not excused:
                    failures.append(f"{where}: no data\n      {expr}")
                if result and excused:
                    failures.append(f"{where}: returns data now: remove it from NO_DATA")
                for sel in dict.fromkeys(selectors(expr)):
                    if unknown(metric_name(sel), known):
                        failures.append(f"{where}: {metric_name(sel)} is in neither the docs' metric reference (docs/metrics.md) nor the sources")
                    if excused:
                        continue
                    result, error = query(prometheus, sel)
                    checked += 1
                    if error or not result:
                        failures.append(f"{where}: the selector {sel} selects nothing ({error or 'no series'})\n      {expr}")
    return checked


def check_rules(groups, prometheus, known, faults, failures):
    checked = 0
    for group in groups:
        for rule in group["rules"]:
            label, expr = rule.get("name"), rule["query"]
            result, error = query(prometheus, expr)
            checked += 1
            for sel in dict.fromkeys(selectors(expr)):
                if unknown(metric_name(sel), known):
                    failures.append(f"rule {label}: {metric_name(sel)} is in neither the docs' metric reference (docs/metrics.md) nor the sources")
            if error or rule.get("health") == "err":
                failures.append(f"rule {label}: {error or rule.get('lastError')}\n      {expr}")
            elif rule["type"] == "recording":
                if not result:
                    failures.append(f"recording rule {label}: no data\n      {expr}")
            else:
                annotations = rule.get("annotations", {})
                missing = [k for k in ("summary", "description", "runbook") if not annotations.get(k)]
                if missing:
                    failures.append(f"alert {label}: no {', '.join(missing)} annotation")
                if label in faults:
                    want = faults[label]
                    if not result:
                        failures.append(f"alert {label}: silent although its fault ({want}) is there\n      {expr}")
                    others = [r["metric"] for r in result if any(r["metric"].get(k) != v for k, v in want.items())]
                    if others:
                        failures.append(f"alert {label}: fires for what is healthy (want only {want}): {others[:3]}\n      {expr}")
                elif label in FIRES_ON_DEMO:
                    if not result:
                        failures.append(f"alert {label}: returns nothing, although the demo's readings trigger it\n      {expr}")
                else:
                    failures.append(f"alert {label}: not covered here: add it to FAULTS (with a fault to fire it) or FIRES_ON_DEMO")
    return checked


# ---------------------------------------------------------------------------------------------------------------

def main(bin_dir, work):
    for tool in ("/usr/bin/prometheus", "/usr/bin/umockdev-run", os.path.join(bin_dir, "accel-exporter"),
                 os.path.join(bin_dir, "accel-metrics-adapter"), os.path.join(bin_dir, "accel-simulator"),
                 os.path.join(bin_dir, "libFakeNVML.so")):
        if not os.path.exists(tool):
            raise CheckError(f"{tool} is missing (build first: swift build; Debian packages: prometheus, umockdev)")
    fixtures = Fixtures()
    fixture_port = serve(fixtures)
    ports = {k: free_port() for k in (DEMO, AMD, FAULT, FAULT + "-restarted", STALE, GONE, "adapter", "adapter-gone",
                                      "prometheus")}
    exporter = os.path.join(bin_dir, "accel-exporter")
    nvml = ["--nvml.library", os.path.join(bin_dir, "libFakeNVML.so"), "--no-collector.amdgpu", "--no-collector.hwmon",
            "--no-collector.intel", "--no-collector.habana", "--no-kubernetes.watch-pods"]
    logs = {k: os.path.join(work, f"{k}.log") for k in ports}

    def listen(node, port=None):
        return ["--web.listen-address", f"127.0.0.1:{ports[port or node]}", "--kubernetes.node-name", node]

    start([exporter, *listen(DEMO), *nvml, "--no-collector.kubelet",
           "--inference.targets", f"llm/vllm-0=http://127.0.0.1:{fixture_port}/vllm"],
          logs[DEMO], env={"FAKE_NVML_CONFIG": os.path.join(NVML_FIXTURES, "vary.nvml")})

    tree = os.path.join(work, "mi300x-8.umockdev")
    with open(tree, "w") as f:
        subprocess.run([os.path.join(bin_dir, "accel-simulator"), "describe", "mi300x-8"], stdout=f, check=True, timeout=60)
    start(["umockdev-run", "-d", tree, "--", "bash", "-c",
           '"$0/accel-simulator" animate --node mi300x-8 --interval 1 & exec "$0/accel-exporter" "$@"', bin_dir,
           *listen(AMD), "--no-collector.nvidia", "--no-collector.kubelet", "--no-kubernetes.watch-pods"], logs[AMD])

    h100x8 = os.path.join(NVML_FIXTURES, "h100x8.nvml")
    fault_machine = os.path.join(work, "fault.nvml")
    write_atomically(fault_machine, nvml_machine(h100x8, "fa", FAULT_GPUS))
    fixtures.fault_idle_gpu = uuids(open(fault_machine).read())[IDLE_GPU]
    fixtures.fault_busy_gpu = uuids(open(fault_machine).read())[NOT_COMPUTING_GPU]

    def start_fault_exporter(port):
        return start([exporter, *listen(FAULT, port), *nvml, "--no-collector.kubelet"], logs[port],
                     env={"FAKE_NVML_CONFIG": fault_machine})

    def discover_fault_exporter(port):
        """The exporter's Service endpoints, as Prometheus' Kubernetes discovery would see them (file_sd here)."""
        write_atomically(os.path.join(work, "fault-targets.json"),
                         json.dumps([{"targets": [f"127.0.0.1:{ports[port]}"], "labels": {"node": FAULT}}]))

    fault_exporter = start_fault_exporter(FAULT)
    discover_fault_exporter(FAULT)

    stale_machine = os.path.join(work, "stale.nvml")
    write_atomically(stale_machine, nvml_machine(h100x8, "5a", {}))
    os.makedirs(os.path.join(work, "pod-resources"))
    start([exporter, *listen(STALE), *nvml, "--collect.interval", "3600s",
           "--kubelet.pod-resources-socket", os.path.join(work, "pod-resources/kubelet.sock")], logs[STALE],
          env={"FAKE_NVML_CONFIG": stale_machine})

    def serves(node, text):
        return lambda: text in get(f"http://127.0.0.1:{ports[node]}/metrics")

    for node, probe in ((DEMO, "inference_requests_running{"), (AMD, 'vendor="amd"'), (FAULT, "accelerator_up{"),
                        (STALE, "accel_exporter_attribution_up")):
        wait_for(f"accel-exporter ({node})", serves(node, probe), log=logs[node])
    fixtures.demo_gpus = sorted(set(re.findall(r'^accelerator_up\{accelerator="([^"]+)"', get(f"http://127.0.0.1:{ports[DEMO]}/metrics"), re.M)))
    fixtures.amd_gpus = sorted(set(re.findall(r'^accelerator_up\{accelerator="([^"]+)"', get(f"http://127.0.0.1:{ports[AMD]}/metrics"), re.M)))

    start([os.path.join(bin_dir, "accel-metrics-adapter"), "--secure-port", "0", "--insecure-port", str(ports["adapter"]),
           "--bind-address", "127.0.0.1", "--exporters.targets", f"127.0.0.1:{ports[DEMO]},127.0.0.1:{ports[AMD]}",
           "--metric-resolution", "1s"], logs["adapter"])
    wait_for("accel-metrics-adapter", lambda: "accel_metrics_adapter_" in get(f"http://127.0.0.1:{ports['adapter']}/metrics"),
             log=logs["adapter"])

    def exporter_job(node):
        return {"targets": [f"127.0.0.1:{ports[node]}"], "labels": {"node": node}}

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [os.path.join(DASHBOARDS, f) for f in sorted(os.listdir(DASHBOARDS)) if f.endswith(".yaml")],
        "scrape_configs": [
            # As deploy/prometheus-scrape.yaml: honor_labels, and the node as a target label.
            {"job_name": "accel-exporter", "honor_labels": True,
             "static_configs": [exporter_job(n) for n in (DEMO, AMD, STALE, GONE)],
             "file_sd_configs": [{"files": [os.path.join(work, "fault-targets.json")]}]},
            {"job_name": "cluster-fixtures", "honor_labels": True, "metrics_path": "/cluster",
             "static_configs": [{"targets": [f"127.0.0.1:{fixture_port}"]}]},
            {"job_name": "accel-metrics-adapter",
             "static_configs": [{"targets": [f"127.0.0.1:{ports['adapter']}", f"127.0.0.1:{ports['adapter-gone']}"]}]},
        ],
    }
    faults = dict(FAULTS, AccelMetricsAdapterDown={"instance": f"127.0.0.1:{ports['adapter-gone']}"})
    config_path = os.path.join(work, "prometheus.yml")
    with open(config_path, "w") as f:
        json.dump(config, f)  # JSON is YAML
    prometheus = ports["prometheus"]
    start(["/usr/bin/prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={work}/data",
           f"--web.listen-address=127.0.0.1:{prometheus}"], logs["prometheus"])
    wait_for("prometheus", lambda: json.loads(get(f"http://127.0.0.1:{prometheus}/api/v1/rules"))["data"]["groups"],
             log=logs["prometheus"])

    def has(expr):
        return bool(query(prometheus, expr)[0])

    # The fault node's acts. Its 8 GPUs must be recorded once before one leaves, its ECC count read before it grows.
    ecc = f'accelerator_errors_total{{node="{FAULT}",type="ecc_uncorrected",accelerator="{uuids(open(fault_machine).read())[1]}"}}'
    wait_for("the fault node's 8 GPUs in node:accelerators:count", lambda: has(f'node:accelerators:count{{node="{FAULT}"}} == 8'),
             timeout=90, log=logs["prometheus"])
    wait_for("the fault node's ECC counter in Prometheus", lambda: has(ecc), log=logs[FAULT])
    write_atomically(fault_machine, nvml_machine(h100x8, "fa", merge(FAULT_GPUS, FAULT_ECC)))
    wait_for("the fault node's ECC count growing in Prometheus", lambda: has(f"{ecc} > 0"), log=logs[FAULT])
    os.killpg(fault_exporter.pid, signal.SIGTERM)
    try:
        fault_exporter.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(fault_exporter.pid, signal.SIGKILL)
        fault_exporter.wait(timeout=10)
    write_atomically(fault_machine, nvml_machine(h100x8, "fa", merge(FAULT_GPUS, FAULT_ECC, FAULT_RESTART), drop={REMOVED_GPU}))
    start_fault_exporter(FAULT + "-restarted")
    wait_for("accel-exporter (fault-node, restarted)", serves(FAULT + "-restarted", "accelerator_up{"), log=logs[FAULT + "-restarted"])
    discover_fault_exporter(FAULT + "-restarted")

    # Rates need two samples inside 1m, the recording rules a few evaluations, the faults their time (the stale
    # node's samples a minute, the lost GPU a rule evaluation after it left). The checks below say what is missing.
    groups = json.loads(get(f"http://127.0.0.1:{prometheus}/api/v1/rules"))["data"]["groups"]
    alerts = {r["name"]: r["query"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    ready = ["rate(inference_requests_total[1m])", "namespace_model_name:inference_request_duration_seconds:p95_5m",
             "accel_metrics_adapter_targets", "increase(accelerator_xid_errors_total[1d])"]
    ready += [alerts[a] for a in faults if a in alerts] + [alerts[a] for a in FIRES_ON_DEMO if a in alerts]
    try:
        wait_for("data for every query", lambda: all(has(q) for q in ready), timeout=150)
    except CheckError:
        pass  # reported below, query by query
    time.sleep(2)

    failures = []
    groups = json.loads(get(f"http://127.0.0.1:{prometheus}/api/v1/rules"))["data"]["groups"]
    recorded = [r["name"] for g in groups for r in g["rules"] if r["type"] == "recording"]
    known = known_names(recorded)
    for name in sorted(set(re.findall(r"(?m)^(?!#)([a-z_][a-z0-9_]*)\{", fixtures.cluster()))):
        if unknown(name, known):
            failures.append(f"fixture exposition: {name} is in neither the docs' metric reference (docs/metrics.md) nor the sources")

    checked, uids = 0, set()
    for name in sorted(os.listdir(DASHBOARDS)):
        if name.endswith(".json"):
            checked += check_dashboard(name, json.load(open(os.path.join(DASHBOARDS, name))), prometheus, known, failures, uids)
    checked += check_rules(groups, prometheus, known, faults, failures)
    failures += test_coverage(set(alerts), recorded)

    if failures:
        print(f"check-dashboards: {len(failures)} failures in {checked} queries and the static checks (logs in {work}):")
        for f in failures:
            print("  - " + f)
        return 1
    print(f"check-dashboards: {checked} dashboard queries, selectors, variables and rules evaluated by Prometheus: all parse "
          f"and return data; {len(faults)} alerts fire for their fault only, {len(FIRES_ON_DEMO)} on the demo's readings; "
          f"every alert has a runbook and firing and silent promtool cases")
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--keep"]
    bin_dir = os.path.abspath(args[0] if args else os.path.join(ROOT, ".build/debug"))
    work = tempfile.mkdtemp(prefix="check-dashboards-")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(DEADLINE_S)
    status = 1
    try:
        status = main(bin_dir, work)
    except (CheckError, Stopped) as e:
        print(f"check-dashboards: {e} (logs in {work})")
    finally:
        signal.alarm(0)
        stop_all()
    if status == 0 and "--keep" not in sys.argv:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(status)
