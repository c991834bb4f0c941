#!/usr/bin/env python3
"""The adapter under chaos, driven by Benchmarks/adapter-chaos.sh (which builds, makes the PKI and the fake NVML,
and cleans up): starts every process, breaks them at random for --duration seconds, checks every answer, and prints
a markdown report. Exit status 1 on a crash, a wrong value or incorrect readiness.

Processes (all on loopback; each one's pid is written to WORK/pids/NAME.pid for the shell's trap):
  - scripts/fake-apiserver.py on a fixed port: EndpointSlices of the exporters' Service, the cluster's
    extension-apiserver-authentication ConfigMap (front-proxy CA), TokenReview / SubjectAccessReview answers;
  - --groups `accel-simulator fleet` processes, one port each, --exporters in all, node names g<G>-node-<I>:
    their pods' values change every second and a share of their nodes flaps (FleetSchedule's formulas, recomputed
    here);
  - one real accel-exporter (8 GPUs of the fake NVML, moving values) whose pods come from a fake kubelet
    (fake-kubelet.py) on a pod-resources socket;
  - accel-metrics-adapter on --adapter-port: HTTPS with --tls-cert-file, exporters from the EndpointSlices,
    the front-proxy settings from the ConfigMap (so /readyz waits for them), delegated authorization.

Chaos, at random times (seeded): fleet processes killed (SIGKILL or SIGTERM) and restarted after 2-25 s (some
outages outlast the staleness bound), the kubelet killed and restarted, the API server killed and restarted on the
same port with the same objects, the serving certificate files replaced by the other test certificate.

Checks: every 0.5 s the front proxy (client certificate + X-Remote-User) asks for pods/*/gpu_utilization in
namespace fleet. A fleet pod's value is right when it equals the fleet's formula for a second in which its node
was serving, no earlier than the staleness bound (plus 2 s of scrape lag) before the request; a real-exporter pod's
value is right when the exporter itself served it (scraped here every 0.25 s) in that window. Anything else is a
wrong value: "stale" when the node or pod was not serving anywhere in the window, "mismatch" otherwise. /readyz and
/livez are polled every 0.5 s: once ready, any other answer is a readiness error. The adapter exiting is a crash.
"""
import argparse
import http.client
import json
import math
import os
import random
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Proc:
    """A child process that can be killed and started again with the same command."""

    def __init__(self, work, name, argv, env=None):
        self.work, self.name, self.argv, self.env = work, name, argv, env
        self.popen = None
        self.starts = 0

    def start(self):
        log = open(os.path.join(self.work, "logs", f"{self.name}.log"), "ab")
        environment = dict(os.environ, **(self.env or {}))
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=environment)
        log.close()
        self.starts += 1
        with open(os.path.join(self.work, "pids", f"{self.name}.pid"), "w") as f:
            f.write(str(self.popen.pid))

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, wait=10.0):
        if not self.alive():
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(wait)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.work, "logs", f"{self.name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def wait_for(predicate, seconds, step=0.1):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(step)
    return False


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def quantity(text):
    """A resource.Quantity as the adapter writes it (plain, or with a milli/micro/nano suffix) as a float."""
    for suffix, scale in (("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * scale
    return float(text)


class Fleet:
    """FleetSchedule's formulas (Sources/DeviceSimulation/FleetSchedule.swift) and each group's outages."""

    def __init__(self, groups, per_group, pods, flap_period, flap_fraction):
        self.groups, self.per_group, self.pods = groups, per_group, pods
        self.flap_period, self.flap_fraction = flap_period, flap_fraction
        self.every = max(1, round(1 / flap_fraction)) if flap_fraction > 0 else None
        self.lock = threading.Lock()
        self.down = {g: [] for g in range(groups)}  # group -> [[from, until or None]]

    def flapping(self, index, t):
        if self.flap_period <= 0 or self.every is None:
            return False
        return (index + math.floor(t / self.flap_period)) % self.every == 0

    @staticmethod
    def value(index, pod, second):
        return ((index * 7919 + pod * 104729 + second * 31) % 1000) / 1000

    def process_down(self, group, t):
        with self.lock:
            self.down[group].append([t, None])

    def process_up(self, group, t):
        with self.lock:
            self.down[group][-1][1] = t

    def process_serving_in(self, group, second):
        """Whether the group's process ran at some moment of [second, second + 1)."""
        with self.lock:
            for start, until in self.down[group]:
                if start <= second and (until is None or until >= second + 1):
                    return False
        return True


class Report:
    def __init__(self):
        self.lock = threading.Lock()
        self.queries = 0
        self.items = 0
        self.answers = {}           # HTTP status -> count
        self.query_errors = {}      # exception kind -> count
        self.wrong = {"stale": 0, "mismatch": 0}
        self.wrong_examples = []
        self.unverifiable = 0       # real-exporter values from a tick this script's scraper did not see
        self.missing_examples = []
        self.missing = 0            # expected (serving all of the last 5 s) but absent
        self.missing_real = 0
        self.readyz = {}            # status -> count, after first ready
        self.livez = {}
        self.readiness_errors = 0
        self.liveness_errors = 0
        self.health_polls = 0
        self.crashes = []
        self.tool_failures = []     # this script's own processes failing (not the adapter's fault)
        self.events = {"exporter kills": 0, "exporter restarts": 0, "kubelet restarts": 0,
                       "API server restarts": 0, "certificate rotations": 0}
        self.served_subjects = []   # (time, CN) on change
        self.rotation_lags = []
        self.kubelet_recoveries = []
        self.real_absent = 0.0      # seconds the real exporter served no pods (after it first did)
        self.recoveries = []        # seconds from a fleet process's restart to its pods being served again
        self.latencies = []
        self.first_ready = None

    def count(self, table, key):
        with self.lock:
            table[key] = table.get(key, 0) + 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--nvml-library", required=True)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--exporters", type=int, default=400)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--flap-period", type=float, default=15)
    parser.add_argument("--flap-fraction", type=float, default=0.05)
    parser.add_argument("--max-age", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--api-port", type=int, default=19971)
    parser.add_argument("--adapter-port", type=int, default=19972)
    parser.add_argument("--exporter-port", type=int, default=19973)
    parser.add_argument("--fleet-port", type=int, default=19974, help="first fleet port; group G listens on this + G")
    args = parser.parse_args()
    work, pki = args.work, os.path.join(args.work, "pki")
    for d in ("logs", "pids", "serving", "kubelet"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    rng = random.Random(args.seed)
    report = Report()
    per_group = max(1, args.exporters // args.groups)
    fleet = Fleet(args.groups, per_group, args.pods, args.flap_period, args.flap_fraction)
    procs = []
    stop = threading.Event()

    def finish(*_):
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)

    try:
        return run(args, work, pki, rng, report, fleet, per_group, procs, stop)
    finally:
        stop.set()
        for proc in reversed(procs):
            proc.stop(signal.SIGTERM, wait=10)


def run(args, work, pki, rng, report, fleet, per_group, procs, stop):
    # --- The API server's objects -------------------------------------------------------------------------------
    proxy_ca = open(os.path.join(pki, "proxy-ca.pem")).read()
    slices = []
    for g in range(args.groups):
        addresses = [(f"127.0.{(i + 1) >> 8}.{(i + 1) & 255}", f"g{g}-node-{i}") for i in range(per_group)]
        for chunk in range(0, per_group, 100):
            slices.append({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"namespace": "accel-metrics", "name": f"accel-exporter-g{g}-{chunk // 100}",
                             "labels": {"kubernetes.io/service-name": "accel-exporter"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "nodeName": n}
                              for a, n in addresses[chunk:chunk + 100]],
                "ports": [{"name": "metrics", "port": args.fleet_port + g, "protocol": "TCP"}],
            })
    slices.append({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "accel-metrics", "name": "accel-exporter-real",
                     "labels": {"kubernetes.io/service-name": "accel-exporter"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}, "nodeName": "real-node"}],
        "ports": [{"name": "metrics", "port": args.exporter_port, "protocol": "TCP"}],
    })
    seed = {
        "objects": slices + [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "kube-system", "name": "extension-apiserver-authentication"},
            "data": {"requestheader-client-ca-file": proxy_ca, "requestheader-allowed-names": '["front-proxy-client"]',
                     "requestheader-username-headers": '["X-Remote-User"]',
                     "requestheader-group-headers": '["X-Remote-Group"]',
                     "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]'},
        }],
        "allow": [{"user": "hpa"}],
    }
    with open(os.path.join(work, "seed.json"), "w") as f:
        json.dump(seed, f)
    with open(os.path.join(work, "kubeconfig"), "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: chaos
clusters: [{{name: fake, cluster: {{server: "http://127.0.0.1:{args.api_port}"}}}}]
users: [{{name: adapter, user: {{token: adapter-token}}}}]
contexts: [{{name: chaos, context: {{cluster: fake, user: adapter, namespace: accel-metrics}}}}]
""")

    # --- Processes ------------------------------------------------------------------------------------------------
    api = Proc(work, "apiserver", ["/usr/bin/python3", os.path.join(ROOT, "scripts/fake-apiserver.py"),
                                   "--seed", os.path.join(work, "seed.json"), "--port", str(args.api_port)])
    fleets = [Proc(work, f"fleet-g{g}", [os.path.join(args.bin, "accel-simulator"), "fleet", "--exporters",
                                         str(per_group), "--port", str(args.fleet_port + g), "--pods", str(args.pods),
                                         "--node-prefix", f"g{g}-node", "--flap-period", str(args.flap_period),
                                         "--flap-fraction", str(args.flap_fraction), "--vary"])
              for g in range(args.groups)]
    nvml_config = os.path.join(ROOT, "Tests/Fixtures/nvml/vary.nvml")
    uuids = [line.split()[1] for line in open(nvml_config) if line.startswith("uuid ")]
    socket_path = os.path.join(work, "kubelet", "kubelet.sock")
    kubelet = Proc(work, "kubelet", ["/usr/bin/python3", os.path.join(ROOT, "Benchmarks/support/fake-kubelet.py"),
                                     "--socket", socket_path, "--devices", ",".join(uuids)])
    exporter = Proc(work, "exporter", [
        os.path.join(args.bin, "accel-exporter"), f"--web.listen-address=127.0.0.1:{args.exporter_port}",
        "--nvml.library", args.nvml_library, "--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.intel",
        "--no-collector.habana", "--no-collector.tpu", "--no-kubernetes.watch-pods", "--no-inference.discovery",
        "--kubernetes.node-name", "real-node", "--kubelet.pod-resources-socket", socket_path,
        "--kubelet.refresh-interval", "1s", "--log.level", "info"], env={"FAKE_NVML_CONFIG": nvml_config})
    serving = os.path.join(work, "serving")
    install_certificate(pki, serving, "server")
    adapter = Proc(work, "adapter", [
        os.path.join(args.bin, "accel-metrics-adapter"), "--secure-port", str(args.adapter_port),
        "--bind-address", "127.0.0.1", "--tls-cert-file", os.path.join(serving, "tls.crt"),
        "--tls-private-key-file", os.path.join(serving, "tls.key"), "--kubeconfig", os.path.join(work, "kubeconfig"),
        "--exporters.service", "accel-metrics/accel-exporter", "--metrics-max-age", f"{args.max_age:g}s",
        "--log.level", "warn"])
    procs.extend([api, *fleets, kubelet, exporter, adapter])

    api.start()
    if not wait_for(lambda: http_get(f"http://127.0.0.1:{args.api_port}/fake/reviews")[0] == 200, 20):
        raise SystemExit("the fake API server did not start:\n" + api.log_tail())
    for proc in fleets:
        proc.start()
    for g in range(args.groups):
        if not wait_for(lambda: "fleet:" in fleets[g].log_tail(), 20):
            raise SystemExit(f"fleet g{g} did not start:\n" + fleets[g].log_tail())
    kubelet.start()
    if not wait_for(lambda: os.path.exists(socket_path), 20):
        raise SystemExit("the fake kubelet did not start:\n" + kubelet.log_tail())
    exporter.start()
    exporter_url = f"http://127.0.0.1:{args.exporter_port}/metrics"
    if not wait_for(lambda: b"accelerator_pod_utilization_ratio{" in http_get(exporter_url)[1], 30):
        raise SystemExit("the exporter serves no pods:\n" + exporter.log_tail())
    adapter.start()

    tls = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    tls.load_cert_chain(os.path.join(pki, "proxy-client.pem"), os.path.join(pki, "proxy-client.key"))
    plain_tls = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    headers = {"X-Remote-User": "hpa", "X-Remote-Group": "system:authenticated"}
    path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/fleet/pods/%2A/gpu_utilization"

    def ask(request_path, context, extra=None, timeout=10.0):
        connection = http.client.HTTPSConnection("127.0.0.1", args.adapter_port, context=context, timeout=timeout)
        try:
            connection.request("GET", request_path, headers=extra or {})
            response = connection.getresponse()
            body = response.read()
            subject = dict(x[0] for x in connection.sock.getpeercert().get("subject", ())).get("commonName", "?")
            return response.status, body, subject
        finally:
            connection.close()

    # --- The real exporter's pods, as it serves them -----------------------------------------------------------------
    real_history = {}   # pod -> [(time, value)]
    real_seen = {}      # pod -> last time seen
    real_since = {}     # pod -> since when every scrape of the exporter has had it
    real_lock = threading.Lock()
    real_present_since = {"t": time.time(), "last": None, "last_pods": None, "previous": 0.0, "tick": None}
    real_gaps = []      # (from, to): more than 0.9 s between two scrapes, an exporter tick may be unseen
    kubelet_state = {"down_at": None, "restarted_at": None}
    recovering = {}     # fleet group -> when its process was started again, until its pods are back

    def scrape_real():
        while not stop.is_set():
            try:
                _, body = http_get(exporter_url, timeout=2)
            except Exception:  # noqa: BLE001 - a failed scrape leaves no record
                time.sleep(0.25)
                continue
            # The answer's time, not the request's: this thread can wait for the GIL between the two.
            t = time.time()
            per_pod = {}
            tick = None
            for line in body.decode().splitlines():
                if line.startswith("accel_exporter_last_sample_timestamp_seconds "):
                    tick = float(line.split()[1])
                    continue
                if not line.startswith("accelerator_pod_utilization_ratio{"):
                    continue
                labels_text, value = line.rsplit(" ", 1)
                labels = dict(part.split("=", 1) for part in labels_text[labels_text.index("{") + 1:-1].split(",")
                              if "=" in part)
                pod = labels.get("pod", "").strip('"')
                accelerator = labels.get("accelerator", "").strip('"')
                per_pod.setdefault(pod, {}).setdefault(accelerator, 0.0)
                per_pod[pod][accelerator] += float(value)
            with real_lock:
                # A tick this scraper did not see: two answers more than 0.9 s apart, or two ticks of the exporter
                # (one a second) more than 1.5 s apart.
                if real_present_since.get("last") is not None and t - real_present_since["last"] > 0.9:
                    real_gaps.append((real_present_since["last"], t))
                if tick is not None and real_present_since.get("tick") is not None and tick - real_present_since["tick"] > 1.5:
                    real_gaps.append((real_present_since["tick"], t))
                real_present_since["last"] = t
                if tick is not None:
                    real_present_since["tick"] = tick
                for pod in list(real_since):
                    if pod not in per_pod:
                        del real_since[pod]
                for pod, by_accelerator in per_pod.items():
                    real_since.setdefault(pod, t)
                    v = round(sum(by_accelerator.values()) / len(by_accelerator) * 100, 3)
                    real_history.setdefault(pod, []).append((t, v))
                    real_history[pod] = [(ht, hv) for ht, hv in real_history[pod] if ht > t - 60]
                    real_seen[pod] = t
                if not per_pod and real_present_since["last_pods"] is not None:
                    report.real_absent += t - max(real_present_since["last_pods"], real_present_since["previous"])
                real_present_since["previous"] = t
                if per_pod:
                    real_present_since["last_pods"] = t
                if per_pod and kubelet_state["restarted_at"] is not None:
                    report.kubelet_recoveries.append(t - kubelet_state["restarted_at"])
                    kubelet_state["restarted_at"] = None
            time.sleep(0.25)

    # From now on (and while the adapter starts), so that the first answers' windows are covered.
    real_thread = threading.Thread(target=scrape_real, daemon=True)
    real_thread.start()

    expected = args.groups * per_group * args.pods + len(uuids)
    if not wait_for(lambda: ask("/readyz", plain_tls)[0] == 200, 60):
        raise SystemExit("the adapter did not become ready in 60 s:\n" + adapter.log_tail())
    report.first_ready = time.time()

    def enough():
        # Every pod of the nodes serving now (flapping ones were never scraped yet), the real exporter's included.
        status, body, _ = ask(path, tls, headers)
        if status != 200:
            return False
        present = {item["describedObject"]["name"] for item in json.loads(body)["items"]}
        now = time.time()
        want = {f"g{g}-node-{i}-pod{j}" for g in range(args.groups) for i in range(per_group) for j in range(args.pods)
                if not fleet.flapping(i, now)} | {f"real-pod-{n}" for n in range(len(uuids))}
        return len(want - present) <= len(want) // 100
    if not wait_for(enough, 90, step=0.5):
        raise SystemExit("the adapter did not serve the pods of the serving nodes within 90 s:\n" + adapter.log_tail())

    # --- Health ------------------------------------------------------------------------------------------------------
    def health():
        while not stop.is_set():
            for endpoint, table in (("/readyz", report.readyz), ("/livez", report.livez)):
                try:
                    status = ask(endpoint, plain_tls, timeout=5)[0]
                except Exception as error:  # noqa: BLE001
                    status = type(error).__name__
                report.count(table, str(status))
                if status != 200:
                    with report.lock:
                        if endpoint == "/readyz":
                            report.readiness_errors += 1
                        else:
                            report.liveness_errors += 1
            with report.lock:
                report.health_polls += 1
            time.sleep(0.5)

    # --- The answers ---------------------------------------------------------------------------------------------------
    def check():
        while not stop.is_set():
            t0 = time.time()
            try:
                status, body, subject = ask(path, tls, headers)
            except Exception as error:  # noqa: BLE001
                report.count(report.query_errors, type(error).__name__)
                time.sleep(0.5)
                continue
            t1 = time.time()
            report.count(report.answers, str(status))
            with report.lock:
                report.queries += 1
                report.latencies.append(t1 - t0)
                if not report.served_subjects or report.served_subjects[-1][1] != subject:
                    report.served_subjects.append((t1, subject))
            if status != 200:
                time.sleep(0.5)
                continue
            items = json.loads(body)["items"]
            present = set()
            low = math.floor(t0 - args.max_age - 2)
            window = range(low, math.floor(t1) + 1)
            process_serving = {g: [s for s in window if fleet.process_serving_in(g, s)] for g in range(args.groups)}
            for item in items:
                pod = item["describedObject"]["name"]
                present.add(pod)
                value = quantity(item["value"])
                verdict = judge(pod, value, low, t1, process_serving)
                if verdict:
                    explain(pod, item, verdict, t0, t1, low, process_serving)
                if verdict == "unverifiable":
                    with report.lock:
                        report.unverifiable += 1
                elif verdict:
                    with report.lock:
                        report.wrong[verdict] += 1
                        if len(report.wrong_examples) < 10:
                            report.wrong_examples.append(f"{verdict}: {pod} = {item['value']} at {t0:.1f}")
            with report.lock:
                report.items += len(items)
            # Availability: pods whose node served through all of the last 5 s should be there.
            missing = missing_real = 0
            for g in range(args.groups):
                if not all(fleet.process_serving_in(g, s) for s in range(math.floor(t0) - 5, math.floor(t0) + 1)):
                    continue
                for i in range(per_group):
                    if any(fleet.flapping(i, s + 0.5) for s in range(math.floor(t0) - 5, math.floor(t0) + 1)):
                        continue
                    absent = [j for j in range(args.pods) if f"g{g}-node-{i}-pod{j}" not in present]
                    missing += len(absent)
                    if absent and len(report.missing_examples) < 200:
                        report.missing_examples.append(f"{t0:.1f} g{g}-node-{i} pods {absent}")
            with real_lock:
                for pod, since in real_since.items():
                    if since < t0 - 5 and pod not in present:
                        missing_real += 1
                        if len(report.missing_examples) < 400:
                            report.missing_examples.append(f"{t0:.1f} {pod}")
            with report.lock:
                report.missing += missing
                report.missing_real += missing_real
            # A fleet process that came back: its pods are back once nine in ten of its serving nodes' pods are.
            for g, since in list(recovering.items()):
                serving_nodes = [i for i in range(per_group) if not fleet.flapping(i, t0)]
                back = sum(1 for i in serving_nodes for j in range(args.pods) if f"g{g}-node-{i}-pod{j}" in present)
                if back >= 0.9 * len(serving_nodes) * args.pods:
                    report.recoveries.append(t1 - since)
                    recovering.pop(g, None)
            time.sleep(0.5)

    def explain(pod, item, verdict, t0, t1, low, process_serving):
        """What was known when a value was judged wrong or unverifiable, for WORK/wrong.log."""
        with real_lock:
            history = [(round(ht, 2), v) for ht, v in real_history.get(pod, []) if low - 5 <= ht <= t1 + 5]
            gaps = [(round(a, 2), round(b, 2)) for a, b in real_gaps if b > low - 5]
        with open(os.path.join(work, "wrong.log"), "a") as f:
            f.write(json.dumps({"verdict": verdict, "pod": pod, "item": item, "t0": round(t0, 2), "t1": round(t1, 2),
                                "low": low, "history": history, "gaps": gaps,
                                "serving_seconds": {str(g): v[-3:] for g, v in process_serving.items()}}) + "\n")

    def judge(pod, value, low, t1, process_serving):
        """None when right; else "stale" or "mismatch"."""
        if pod.startswith("g"):
            node, _, pod_index = pod.rpartition("-pod")
            group_text, _, index_text = node.partition("-node-")
            g, i, j = int(group_text[1:]), int(index_text), int(pod_index)
            serving = [s for s in process_serving[g] if not fleet.flapping(i, s + 0.5)]
            if not serving:
                return "stale"
            return None if any(abs(fleet.value(i, j, s) * 100 - value) < 0.0015 for s in serving) else "mismatch"
        with real_lock:
            history = [v for ht, v in real_history.get(pod, []) if low - 0.5 <= ht <= t1 + 0.5]
            gap = any(b > low - 1 and a < t1 for a, b in real_gaps)
        if any(abs(v - value) < 0.0015 for v in history):
            return None
        if gap:
            return "unverifiable"
        return "stale" if not history else "mismatch"

    def note(text):
        with open(os.path.join(work, "events.log"), "a") as f:
            f.write(f"{time.time():.2f} {text}\n")

    # --- Chaos ----------------------------------------------------------------------------------------------------------
    def chaos():
        now = time.time()
        next_kill = {g: now + rng.uniform(5, 30) for g in range(args.groups)}
        restart_at = {}
        next_kubelet = now + rng.uniform(10, 30)
        kubelet_back = None
        next_api = now + rng.uniform(20, 60)
        api_back = None
        next_rotation = now + rng.uniform(15, 40)
        rotation = 0
        pending_rotation = None
        lost = set()
        while not stop.is_set():
            now = time.time()
            for g in range(args.groups):
                if g not in restart_at and not fleets[g].alive() and g not in lost:
                    lost.add(g)
                    report.tool_failures.append(f"fleet g{g} exited on its own:\n{fleets[g].log_tail(5)}")
                if g in restart_at and now >= restart_at[g]:
                    fleets[g].start()
                    fleet.process_up(g, time.time())
                    recovering[g] = time.time()
                    note(f"fleet g{g} started")
                    del restart_at[g]
                    report.events["exporter restarts"] += 1
                    next_kill[g] = now + rng.uniform(10, 40)
                elif g not in restart_at and now >= next_kill[g]:
                    recovering.pop(g, None)
                    fleet.process_down(g, time.time())
                    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
                    fleets[g].stop(sig)
                    note(f"fleet g{g} stopped with {sig.name}")
                    restart_at[g] = now + rng.uniform(2, 25)
                    report.events["exporter kills"] += 1
            if kubelet_back is None and now >= next_kubelet:
                kubelet.stop(signal.SIGKILL)
                note("kubelet killed")
                kubelet_back = now + rng.uniform(1, 8)
            elif kubelet_back is not None and now >= kubelet_back:
                kubelet.start()
                note("kubelet started")
                kubelet_state["restarted_at"] = time.time()
                report.events["kubelet restarts"] += 1
                kubelet_back = None
                next_kubelet = now + rng.uniform(15, 45)
            if api_back is None and now >= next_api:
                api.stop(signal.SIGKILL)
                note("API server killed")
                api_back = now + rng.uniform(1, 5)
            elif api_back is not None and now >= api_back:
                api.start()
                note("API server started")
                report.events["API server restarts"] += 1
                api_back = None
                next_api = now + rng.uniform(30, 90)
            if now >= next_rotation:
                rotation += 1
                name = "server2" if rotation % 2 else "server"
                install_certificate(pki, serving, name)
                note(f"serving certificate now {name}")
                report.events["certificate rotations"] += 1
                pending_rotation = (time.time(), "localhost-rotated" if name == "server2" else "localhost")
                next_rotation = now + rng.uniform(20, 60)
            if pending_rotation is not None:
                with report.lock:
                    seen = [t for t, cn in report.served_subjects if t >= pending_rotation[0] and cn == pending_rotation[1]]
                if seen:
                    report.rotation_lags.append(seen[0] - pending_rotation[0])
                    pending_rotation = None
            if not adapter.alive():
                report.crashes.append(f"adapter exited with {adapter.popen.returncode}:\n{adapter.log_tail()}")
                stop.set()
            if not exporter.alive():
                report.crashes.append(f"accel-exporter exited with {exporter.popen.returncode}:\n{exporter.log_tail()}")
                stop.set()
            time.sleep(0.1)
        # Bring everything back before the report (and so the shell's trap finds every pid where it expects it).
        for g in list(restart_at):
            fleets[g].start()
            fleet.process_up(g, time.time())

    threads = [threading.Thread(target=f, daemon=True) for f in (health, check, chaos)] + [real_thread]
    started = time.time()
    for thread in threads[:-1]:
        thread.start()
    while not stop.is_set() and time.time() - started < args.duration:
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(30)
    elapsed = time.time() - started
    hwm = "?"
    if adapter.alive():
        with open(f"/proc/{adapter.popen.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = f"{int(line.split()[1]) / 1024:.1f} MiB"
    with open(os.path.join(work, "missing.log"), "w") as f:
        f.write("\n".join(report.missing_examples) + "\n")
    print_report(args, report, elapsed, expected, hwm)
    failed = report.crashes or sum(report.wrong.values()) or report.readiness_errors or report.liveness_errors
    return 1 if failed else 0


def install_certificate(pki, serving, name):
    """Replaces the serving certificate files as a Secret volume update does: new files renamed into place."""
    for source, target in ((f"{name}.pem", "tls.crt"), (f"{name}.key", "tls.key")):
        with open(os.path.join(pki, source), "rb") as f:
            data = f.read()
        temporary = os.path.join(serving, f".{target}.new")
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, os.path.join(serving, target))


def print_report(args, report, elapsed, expected, hwm):
    latencies = sorted(report.latencies)

    def pct(p):
        return f"{latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000:.0f} ms" if latencies else "-"

    def middle(values):
        return f"{sorted(values)[len(values) // 2]:.1f}" if values else "-"

    lags = ", ".join(f"{x:.1f}" for x in report.rotation_lags) or "-"
    recoveries = report.kubelet_recoveries
    rows = [
        ("duration", f"{elapsed:.0f} s"),
        ("exporters", f"{args.groups} fleet processes x {args.exporters // args.groups} nodes x {args.pods} pods, "
                      f"{args.flap_fraction:g} of the nodes flapping every {args.flap_period:g} s; 1 real accel-exporter "
                      f"(8 GPUs) with a kubelet; {expected} pods in all"),
        ("chaos", ", ".join(f"{v} {k}" for k, v in report.events.items())),
        ("crashes (adapter or real exporter exited)", str(len(report.crashes))),
        ("wrong values", f"{sum(report.wrong.values())} (stale {report.wrong['stale']}, mismatch {report.wrong['mismatch']})"
                         f" of {report.items} values checked"),
        ("pods/*/gpu_utilization requests", f"{report.queries}; answers {report.answers}; "
                                            f"failed to connect {report.query_errors or 0}"),
        ("request latency p50 / p99", f"{pct(0.5)} / {pct(0.99)}"),
        ("readiness: /readyz, /livez polls after first ready", f"{report.health_polls}; /readyz {report.readyz}, "
                                                              f"/livez {report.livez}"),
        ("readiness errors", f"/readyz {report.readiness_errors}, /livez {report.liveness_errors}"),
        ("real-exporter values not verifiable (this script's scraper missed a tick)", str(report.unverifiable)),
        ("missing (node serving all of the last 5 s, pod absent)", f"fleet {report.missing}, real exporter {report.missing_real}"),
        ("fleet process restarted: its pods served again after",
         f"{len(report.recoveries)} restarts; p50 {middle(report.recoveries)} s, max "
         f"{max(report.recoveries) if report.recoveries else 0:.1f} s"),
        ("certificate rotations seen served after", f"{lags} s"),
        ("kubelet restarts: first scrape of the real exporter with its pods after",
         f"{', '.join(f'{x:.1f}' for x in recoveries) or '-'} s; no pods on it for {report.real_absent:.1f} s in all"),
        ("adapter peak RSS (VmHWM)", hwm),
    ]
    print()
    print(f"Adapter chaos: {time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores, seed {args.seed}, "
          f"staleness bound {args.max_age:g} s; load average at the end (1, 5, 15 min; other work on the machine "
          f"counts too): {' '.join(open('/proc/loadavg').read().split()[:3])}.")
    print()
    print("| | |")
    print("|---|---|")
    for key, value in rows:
        print(f"| {key} | {value} |")
    for example in report.wrong_examples:
        print(f"wrong: {example}")
    for crash in report.crashes:
        print(f"CRASH: {crash}")
    for failure in report.tool_failures:
        print(f"note: {failure}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
