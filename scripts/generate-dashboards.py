#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/*.json from the panel lists below (one place to change a query).

    python3 scripts/generate-dashboards.py          # rewrite dashboards/*.json
    python3 scripts/generate-dashboards.py --check  # exit 1 if a committed file differs from what this writes

Each dashboard uses a Prometheus datasource chosen through the `datasource` variable (no UID of a live instance),
current Grafana's schema, and panels that each carry a description and a unit. scripts/check-dashboards.py runs
every query against a real Prometheus.

Metric names come from docs/metric-schema.json, which the Swift MetricSchema module writes (a test keeps it
current): every exporter series a query names must be one the schema defines, so renaming a family or changing its
labels there fails this generator until the panels follow.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}

SCHEMA = json.load(open(os.path.join(HERE, "..", "docs", "metric-schema.json")))
# Every series name the exporter writes: `accelerator_errors_total`, `accelerator_info`, histogram `_bucket`s…
SERIES = {name for family in SCHEMA["families"].values() for name in family["sample_names"]}
# An exporter series in a query: our prefixes, not part of a recording rule's name (`model:…:avg`).
EXPORTER_SERIES = re.compile(r"(?<![\w:])((?:accelerator|inference|accel_exporter|hwmon)_[a-z0-9_]+)(?![\w:])")


def schema_series(expr):
    """The exporter series `expr` names; each must be in the schema."""
    names = set(EXPORTER_SERIES.findall(expr))
    unknown = sorted(names - SERIES)
    if unknown:
        sys.exit(f"generate-dashboards: {', '.join(unknown)} in {expr!r} is not a series of docs/metric-schema.json")
    return names


# Selectors shared by the panels: node drill-down and fleet filters.
FLEET = 'vendor=~"$vendor", model=~"$model"'
NODE = 'node=~"$node"'


def variable_datasource():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1}


def variable(name, label, query, multi=True, include_all=True):
    schema_series(query)
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "refresh": 2, "multi": multi, "includeAll": include_all, "allValue": ".*" if include_all else None,
            "current": {}, "sort": 1, "hide": 0}


def target(expr, legend="", ref="A", instant=False, fmt=None):
    schema_series(expr)
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    if fmt:
        t["format"] = fmt
    return t


class Layout:
    """Places panels left to right, 24 columns a row."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = max(self.row_height, h)
        pid = self.next_id
        self.next_id += 1
        return pos, pid

    def row(self, title):
        if self.x:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        pos = {"x": 0, "y": self.y, "w": 24, "h": 1}
        self.y += 1
        pid = self.next_id
        self.next_id += 1
        return {"type": "row", "title": title, "id": pid, "gridPos": pos, "collapsed": False, "panels": []}


def panel(layout, kind, title, description, unit, targets, w=12, h=8, **options):
    pos, pid = layout.place(w, h)
    p = {"type": kind, "title": title, "description": description, "id": pid, "gridPos": pos, "datasource": DS,
         "targets": [t if isinstance(t, dict) else target(*t) for t in targets],
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
        p["fieldConfig"]["defaults"]["custom"] = {"lineWidth": 1, "fillOpacity": 10}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    elif kind == "heatmap":
        p["options"] = {"calculate": False, "yAxis": {"unit": unit}, "cellGap": 1,
                        "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64}}
    elif kind == "table":
        p["options"] = {"showHeader": True, "cellHeight": "sm"}
        p["transformations"] = [{"id": "merge", "options": {}},
                                {"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    for key, value in options.items():
        if key == "thresholds":
            p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": value}
        elif key == "minmax":
            p["fieldConfig"]["defaults"]["min"], p["fieldConfig"]["defaults"]["max"] = value
        else:
            p[key] = value
    return p


def dashboard(uid, title, description, variables, panels, tags):
    return {
        "uid": uid, "title": title, "description": description, "tags": ["accelmetrics"] + tags,
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "timezone": "",
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [variable_datasource()] + variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["accelmetrics"], "asDropdown": True, "title": "AccelMetrics"}],
        "panels": panels,
    }


def fleet():
    L = Layout()
    util = f"accelerator_utilization_ratio{{{FLEET}}}"
    p = [L.row("Inventory")]
    p.append(panel(L, "stat", "Accelerators", "Accelerators the exporters list, by vendor and model.", "none",
                   [(f"sum by (vendor, model) (model:accelerators:count{{{FLEET}}})", "{{vendor}} {{model}}", "A", True)], w=8, h=5))
    p.append(panel(L, "stat", "Not answering", "Accelerators the driver lists whose reads fail (accelerator_up = 0).",
                   "none", [(f"count(accelerator_up{{{FLEET}}} == 0) or vector(0)", "", "A", True)], w=4, h=5,
                   thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}]))
    p.append(panel(L, "stat", "Allocated", "Accelerators allocated to at least one container (device plugin or DRA).",
                   "none", [(f"sum(model:accelerators_allocated:count{{{FLEET}}}) or vector(0)", "", "A", True)], w=4, h=5))
    p.append(panel(L, "stat", "Allocated and idle", "Allocated accelerators with no utilization above 1 % over the last hour: paid for, unused.",
                   "none", [("count(max by (node, accelerator) (accelerator_allocated) and on (node, accelerator) "
                             "(max by (node, accelerator) (max_over_time(accelerator_utilization_ratio[1h])) < 0.01)) or vector(0)", "", "A", True)],
                   w=4, h=5, thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}]))
    p.append(panel(L, "stat", "Exporters up", "Exporters Prometheus scrapes successfully, out of all.", "percentunit",
                   [('avg(up{job=~".*accel-exporter.*"})', "", "A", True)], w=4, h=5, minmax=(0, 1)))
    p.append(L.row("Utilization and memory"))
    p.append(panel(L, "timeseries", "Utilization by model", "Mean main-engine utilization of each model's accelerators (0-1; recorded every 30 s).",
                   "percentunit", [(f"model:accelerator_utilization_ratio:avg{{{FLEET}}}", "{{vendor}} {{model}}")], minmax=(0, 1)))
    p.append(panel(L, "timeseries", "Utilization by node", "Mean utilization of each node's accelerators.", "percentunit",
                   [(f"avg by (node) ({util})", "{{node}}")], minmax=(0, 1)))
    p.append(panel(L, "heatmap", "Utilization heatmap", "How many accelerators sit in each utilization band, over time.",
                   "percentunit", [target(f"sum by (le) (count_values(\"le\", ceil({util} * 10) / 10))", "{{le}}", fmt="heatmap")]))
    p.append(panel(L, "heatmap", "Memory use heatmap", "How many accelerators sit in each band of device-memory use (used / total).",
                   "percentunit", [target(f"sum by (le) (count_values(\"le\", ceil(accelerator_memory_used_bytes{{memory=\"vram\", {FLEET}}} / "
                                          f"on (node, accelerator, memory) accelerator_memory_total_bytes{{memory=\"vram\"}} * 10) / 10))", "{{le}}", fmt="heatmap")]))
    p.append(L.row("Power, temperature, throttling"))
    p.append(panel(L, "timeseries", "Power by node", "Accelerator power draw summed per node.", "watt",
                   [("node:accelerator_power_watts:sum", "{{node}}")], w=8))
    p.append(panel(L, "timeseries", "Device memory used by node", "Device memory (VRAM, HBM) in use, summed per node.", "bytes",
                   [("node:accelerator_memory_used_bytes:sum", "{{node}}")], w=8))
    p.append(panel(L, "timeseries", "Energy per hour by model", "Energy the accelerators of each model used, per hour.", "joule",
                   [(f"sum by (vendor, model) (increase(accelerator_energy_joules_total{{{FLEET}}}[1h]))", "{{vendor}} {{model}}")], w=8))
    p.append(panel(L, "timeseries", "Hottest accelerator per node", "The highest accelerator temperature on each node.", "celsius",
                   [(f"max by (node) (accelerator_temperature_celsius{{{FLEET}}})", "{{node}}")], w=8))
    p.append(panel(L, "timeseries", "Throttled accelerators by reason", "Accelerators whose clocks are held down, by reason (idle and settings reasons left out).",
                   "none", [(f"count by (reason) (accelerator_throttle_active{{reason!~\"gpu_idle|applications_clocks_setting|display_clock_setting|sync_boost\", {FLEET}}} == 1)",
                             "{{reason}}")]))
    p.append(L.row("Errors"))
    p.append(panel(L, "timeseries", "Errors by type", "Error counters' increase over 10 minutes, by type (ECC, PCIe replay, row remapping, resets).",
                   "none", [(f"sum by (type) (increase(accelerator_errors_total{{{FLEET}}}[10m]))", "{{type}}")]))
    # An XID series appears with its first XID, which increase() does not count: a series new within the day counts
    # in full (as in the XID alerts).
    xids = "accelerator_xid_errors_total"
    p.append(panel(L, "table", "NVIDIA XIDs in the last day", "XID critical errors the driver reported in the last day, per accelerator and code.",
                   "none", [target(f"sum by (node, accelerator, xid) (({xids} unless {xids} offset 1d) or (increase({xids}[1d]) > 0))",
                                   "", instant=True, fmt="table")]))
    return dashboard("accelmetrics-fleet", "AccelMetrics / Fleet", "Every accelerator of the cluster: inventory, use, power, heat, errors.",
                     [variable("vendor", "Vendor", "label_values(accelerator_info, vendor)"),
                      variable("model", "Model", 'label_values(accelerator_info{vendor=~"$vendor"}, model)')], p, ["fleet"])


def node():
    L = Layout()
    sel = f"{{{NODE}}}"
    p = [L.row("Devices")]
    p.append(panel(L, "table", "Accelerators", "The node's accelerators and what the driver says about them.", "none",
                   [target(f"accelerator_info{sel}", "", instant=True, fmt="table")], w=24, h=7))
    # Utilization says a kernel ran; saturation says how much of the GPU it used (NVIDIA GPM, Hopper and later).
    p.append(L.row("Utilization and saturation"))
    p.append(panel(L, "timeseries", "Utilization", "Main-engine utilization of each accelerator (0-1): the share of time any kernel ran.",
                   "percentunit", [(f"accelerator_utilization_ratio{sel}", "{{accelerator}}")], w=8, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "SM activity", "Share of the streaming multiprocessors busy (0-1, NVIDIA GPM). Far below "
                   "utilization: the kernels that run use few SMs.", "percentunit",
                   [(f"accelerator_sm_active_ratio{sel}", "{{accelerator}}")], w=8, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "Tensor activity", "Share of time the tensor cores were busy (0-1, any tensor work, FP8 "
                   "included; NVIDIA GPM).", "percentunit",
                   [(f'accelerator_pipe_active_ratio{{pipe="tensor", {NODE}}}', "{{accelerator}}")], w=8, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "SM occupancy", "Resident warps against the SMs' maximum (0-1, NVIDIA GPM): low occupancy "
                   "leaves latency unhidden.", "percentunit",
                   [(f"accelerator_sm_occupancy_ratio{sel}", "{{accelerator}}")], w=8, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "Memory bandwidth", "Device-memory bandwidth used against its peak (0-1, NVIDIA GPM): near 1, "
                   "the work is memory-bound.", "percentunit",
                   [(f"accelerator_memory_bandwidth_utilization_ratio{sel}", "{{accelerator}}")], w=8, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "Interconnect traffic", "Bytes per second over NVLink or XGMI per accelerator and direction, "
                   "all links summed (NVIDIA GPM, else the links' counters).", "Bps",
                   [(f"sum by (accelerator, direction) (accelerator_interconnect_bandwidth_bytes_per_second{sel})",
                     "{{accelerator}} {{direction}}")], w=8))
    p.append(L.row("Memory, power, heat"))
    p.append(panel(L, "timeseries", "Memory used", "Device memory in use per accelerator.", "bytes",
                   [(f'accelerator_memory_used_bytes{{memory="vram", {NODE}}}', "{{accelerator}}")], w=24))
    p.append(panel(L, "timeseries", "Power", "Power draw per accelerator, with its limit dashed.", "watt",
                   [(f"accelerator_power_watts{sel}", "{{accelerator}}"),
                    (f"accelerator_power_limit_watts{sel}", "{{accelerator}} limit", "B")], w=8))
    p.append(panel(L, "timeseries", "Temperature", "Every temperature sensor of each accelerator.", "celsius",
                   [(f"accelerator_temperature_celsius{sel}", "{{accelerator}} {{sensor}}")], w=8))
    p.append(panel(L, "timeseries", "Clocks", "Current clocks per accelerator and clock domain.", "hertz",
                   [(f"accelerator_clock_hertz{sel}", "{{accelerator}} {{clock}}")], w=8))
    p.append(panel(L, "timeseries", "Throttle reasons", "1 while a throttle reason holds, per accelerator.", "none",
                   [(f"accelerator_throttle_active{{{NODE}}} == 1", "{{accelerator}} {{reason}}")]))
    p.append(panel(L, "timeseries", "Errors", "Error counters' increase over 10 minutes.", "none",
                   [(f"increase(accelerator_errors_total{sel}[10m])", "{{accelerator}} {{type}}")]))
    p.append(panel(L, "timeseries", "PCIe traffic", "Bytes per second over PCIe per accelerator and direction (total where "
                   "the hardware gives only the sum).", "Bps",
                   [(f"accelerator_pcie_bandwidth_bytes_per_second{sel}", "{{accelerator}} {{direction}}")]))
    p.append(L.row("Exporter"))
    p.append(panel(L, "timeseries", "Collector health", "1 when the collector's last sample succeeded.", "none",
                   [(f"accel_exporter_collector_success{sel}", "{{collector}}")], w=8))
    p.append(panel(L, "timeseries", "Sample age", "Seconds since the exporter's last sample began.", "s",
                   [(f"time() - accel_exporter_last_sample_timestamp_seconds{sel}", "{{instance}}")], w=8))
    p.append(panel(L, "timeseries", "Exporter memory", "The exporter's resident memory.", "bytes",
                   [(f"process_resident_memory_bytes{{job=~\".*accel-exporter.*\", {NODE}}}", "{{instance}}")], w=8))
    return dashboard("accelmetrics-node", "AccelMetrics / Node", "One node's accelerators in detail, and its exporter's health.",
                     [variable("node", "Node", "label_values(accelerator_info, node)", multi=False, include_all=False)], p, ["node"])


def workload():
    L = Layout()
    ns = 'namespace=~"$namespace"'
    p = [L.row("Allocation")]
    p.append(panel(L, "stat", "Accelerators allocated", "Accelerators held by the selected namespaces' containers.", "none",
                   [(f"count(max by (node, accelerator) (accelerator_allocated{{{ns}}})) or vector(0)", "", "A", True)], w=6, h=5))
    p.append(panel(L, "stat", "Mean utilization of held accelerators", "Mean of the pods' own utilization shares.", "percentunit",
                   [(f"avg(accelerator_pod_utilization_ratio{{{ns}}})", "", "A", True)], w=6, h=5, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "Allocated accelerators by namespace", "Accelerators held per namespace.", "none",
                   [(f"namespace:accelerator_allocated:count{{{ns}}}", "{{namespace}}")], w=12, h=5))
    p.append(panel(L, "table", "Who holds what", "Each allocation: container, accelerator, DRA claim (if any), and the pod's measured share.",
                   "none", [target(f'max by (namespace, pod, container, node, accelerator, model, claim) (accelerator_allocated{{{ns}, pod=~"$pod"}})',
                                   "", "A", instant=True, fmt="table"),
                            target(f'max by (namespace, pod, container, node, accelerator, model) (accelerator_pod_utilization_ratio{{{ns}, pod=~"$pod"}})',
                                   "", "B", instant=True, fmt="table")], w=24, h=8))
    p.append(L.row("Usage"))
    p.append(panel(L, "timeseries", "Utilization per pod", "Each container's share of its accelerators' main engine (the device's figure when held exclusively).",
                   "percentunit", [(f'accelerator_pod_utilization_ratio{{{ns}, pod=~"$pod"}}', "{{namespace}}/{{pod}}/{{container}} {{accelerator}}")]))
    p.append(panel(L, "timeseries", "Device memory per pod", "Device memory each container uses (its own share on shared GPUs).", "bytes",
                   [(f'accelerator_pod_memory_used_bytes{{{ns}, pod=~"$pod"}}', "{{namespace}}/{{pod}}/{{container}} {{accelerator}}")]))
    # Saturation is measured per device (GPM has no per-process split): shown for accelerators one container holds
    # alone, so a shared GPU's figure is never pinned on each of its users.
    held_alone = (f'(max by (node, accelerator, namespace, pod, container) (accelerator_allocated{{{ns}, pod=~"$pod"}}) '
                  f"and on (node, accelerator) (count by (node, accelerator) (accelerator_allocated) == 1))")
    for title, series, what in (("SM activity per pod", "accelerator_sm_active_ratio", "share of its SMs busy"),
                                ("Tensor activity per pod", 'accelerator_pipe_active_ratio{pipe="tensor"}', "share of time its tensor cores were busy"),
                                ("Memory bandwidth per pod", "accelerator_memory_bandwidth_utilization_ratio", "device-memory bandwidth used against its peak")):
        p.append(panel(L, "timeseries", title, f"For each accelerator a container holds alone: the {what} (0-1, NVIDIA GPM), "
                       "beside its utilization.", "percentunit",
                       [(f"{series} * on (node, accelerator) group_left (namespace, pod, container) {held_alone}",
                         "{{namespace}}/{{pod}}/{{container}} {{accelerator}}")], w=8, minmax=(0, 1)))
    p.append(panel(L, "timeseries", "Shared accelerators", "Accelerators allocated to more than one container (time-slicing, MPS, DRA shares).", "none",
                   [(f"count(count by (node, accelerator) (accelerator_allocated{{{ns}}}) > 1) or vector(0)", "shared")], w=8))
    p.append(panel(L, "timeseries", "Utilization by namespace", "Sum of the namespace's utilization shares (1 = one accelerator fully busy).", "none",
                   [(f"namespace:accelerator_pod_utilization_ratio:sum{{{ns}}}", "{{namespace}}")], w=8))
    p.append(panel(L, "timeseries", "Device memory by namespace", "Device memory the namespace's containers use (their own shares on shared GPUs).", "bytes",
                   [(f"namespace:accelerator_pod_memory_used_bytes:sum{{{ns}}}", "{{namespace}}")], w=8))
    p.append(panel(L, "timeseries", "Attribution health", "1 while the exporter's pod attribution is current, per node.", "none",
                   [("accel_exporter_attribution_up", "{{node}}")], w=8))
    return dashboard("accelmetrics-workload", "AccelMetrics / Workloads", "Accelerators by namespace, pod and container, with per-pod use on shared GPUs.",
                     [variable("namespace", "Namespace", "label_values(accelerator_allocated, namespace)"),
                      variable("pod", "Pod", 'label_values(accelerator_allocated{namespace=~"$namespace"}, pod)')], p, ["workload"])


def inference():
    L = Layout()
    sel = 'namespace=~"$namespace", model_name=~"$model_name"'
    p = [L.row("Load")]
    p.append(panel(L, "timeseries", "Queue depth", "Requests waiting for a batch slot, summed per model.", "none",
                   [(f"sum by (namespace, model_name) (inference_requests_waiting{{{sel}}})", "{{namespace}} {{model_name}}")], w=8))
    p.append(panel(L, "timeseries", "Running requests", "Requests in the running batch, summed per model.", "none",
                   [(f"sum by (namespace, model_name) (inference_requests_running{{{sel}}})", "{{namespace}} {{model_name}}")], w=8))
    p.append(panel(L, "timeseries", "KV cache", "The fullest KV cache of each model's pods (0-1).", "percentunit",
                   [(f"max by (namespace, model_name) (inference_kv_cache_utilization_ratio{{{sel}}})", "{{namespace}} {{model_name}}")], w=8, minmax=(0, 1)))
    p.append(L.row("Latency"))
    p.append(panel(L, "timeseries", "Request latency p50 / p95 / p99", "Percentiles over all the model's pods, from merged histogram buckets.", "s",
                   [(f"histogram_quantile({q}, sum by (namespace, model_name, le) (rate(inference_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                     f"{{{{model_name}}}} p{int(q * 100)}", ref) for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]))
    p.append(panel(L, "timeseries", "Time to first token p95", "95th percentile of the time to the first token, per model.", "s",
                   [(f"histogram_quantile(0.95, sum by (namespace, model_name, le) (rate(inference_time_to_first_token_seconds_bucket{{{sel}}}[$__rate_interval])))",
                     "{{model_name}}")]))
    p.append(panel(L, "timeseries", "Per-pod p50 / p95 / p99 (exporter window)", "Each pod's own request-latency percentiles over the exporter's --inference.window.", "s",
                   [(f"inference_request_duration_p{q}_seconds{{{sel}}}", f"{{{{pod}}}} p{q}", ref) for q, ref in (("50", "A"), ("95", "B"), ("99", "C"))]))
    p.append(panel(L, "timeseries", "Time per output token p95", "95th percentile of the time per output token, per model.", "s",
                   [(f"histogram_quantile(0.95, sum by (namespace, model_name, le) (rate(inference_time_per_output_token_seconds_bucket{{{sel}}}[$__rate_interval])))",
                     "{{model_name}}")]))
    p.append(panel(L, "timeseries", "Queue time p95", "95th percentile of the time requests wait before running, per model.", "s",
                   [(f"histogram_quantile(0.95, sum by (namespace, model_name, le) (rate(inference_queue_time_seconds_bucket{{{sel}}}[$__rate_interval])))",
                     "{{model_name}}")]))
    p.append(L.row("Throughput"))
    p.append(panel(L, "timeseries", "Tokens per second", "Generated tokens per second, per model.", "short",
                   [(f"sum by (namespace, model_name) (rate(inference_generated_tokens_total{{{sel}}}[$__rate_interval]))", "{{model_name}}")]))
    p.append(panel(L, "timeseries", "Requests per second", "Completed requests per second, per model.", "reqps",
                   [(f"sum by (namespace, model_name) (rate(inference_requests_total{{{sel}}}[$__rate_interval]))", "{{model_name}}")]))
    p.append(panel(L, "table", "Last 5 minutes per model", "Per model (recorded every 30 s): requests waiting, requests/s, tokens/s, "
                   "p95 latency and p95 time to first token from the merged buckets of all its pods.", "short",
                   [target(f"namespace_model_name:{rec}{{{sel}}}", "", ref, instant=True, fmt="table")
                    for rec, ref in (("inference_requests_waiting:sum", "A"), ("inference_requests:rate5m", "B"),
                                     ("inference_generated_tokens:rate5m", "C"), ("inference_request_duration_seconds:p95_5m", "D"),
                                     ("inference_time_to_first_token_seconds:p95_5m", "E"))], w=24, h=6))
    p.append(panel(L, "timeseries", "Model servers up", "1 while the exporter's last scrape of the model server succeeded.", "none",
                   [('accel_exporter_inference_target_up{namespace=~"$namespace"}', "{{namespace}}/{{pod}}")], w=24, h=6))
    return dashboard("accelmetrics-inference", "AccelMetrics / Inference", "Model servers: queue depth, KV cache, latency percentiles, throughput.",
                     [variable("namespace", "Namespace", "label_values(inference_requests_running, namespace)"),
                      variable("model_name", "Model", 'label_values(inference_requests_running{namespace=~"$namespace"}, model_name)')], p, ["inference"])


def autoscaling():
    L = Layout()
    hpa = 'namespace=~"$namespace"'
    p = [L.row("Adapter")]
    p.append(panel(L, "stat", "Adapter up", "Whether Prometheus can scrape the metrics adapter.", "none",
                   [('max(up{job=~".*accel-metrics-adapter.*"}) or vector(0)', "", "A", True)], w=6, h=5,
                   thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]))
    p.append(panel(L, "stat", "Exporters feeding it", "Exporters whose last scrape by the adapter succeeded.", "none",
                   [('sum(accel_metrics_adapter_targets{state="up"})', "", "A", True)], w=6, h=5))
    p.append(panel(L, "stat", "Pods with fresh data", "Pods the adapter can answer for now.", "none",
                   [("sum(accel_metrics_adapter_store_pods)", "", "A", True)], w=6, h=5))
    p.append(panel(L, "stat", "Resolution reached", "Mean time between two scrapes of one exporter: how fresh the HPA's numbers are.", "s",
                   [("max(accel_metrics_adapter_scrape_interval_seconds)", "", "A", True)], w=6, h=5))
    p.append(panel(L, "timeseries", "API answers by kind", "Requests the adapter answered per second, by kind and status code.", "reqps",
                   [("sum by (kind, code) (rate(accel_metrics_adapter_request_duration_seconds_count[$__rate_interval]))", "{{kind}} {{code}}")], w=8))
    p.append(panel(L, "timeseries", "API latency p95", "95th percentile of the adapter's answer time, by kind.", "s",
                   [("histogram_quantile(0.95, sum by (kind, le) (rate(accel_metrics_adapter_request_duration_seconds_bucket[$__rate_interval])))", "{{kind}}")], w=8))
    p.append(panel(L, "timeseries", "Exporters by state", "Exporters whose last scrape by the adapter succeeded (up) or failed (down).", "none",
                   [("sum by (state) (accel_metrics_adapter_targets)", "{{state}}")], w=8))
    p.append(panel(L, "timeseries", "Age of the exporters' samples", "Seconds since each exporter's last sample began: the timestamp the adapter serves "
                   "with its values (it serves nothing older than its staleness bound).", "s",
                   [('max by (node) (time() - accel_exporter_last_sample_timestamp_seconds{job=~".*accel-exporter.*"})', "{{node}}")], w=8))
    p.append(panel(L, "timeseries", "Exporter scrape time p95", "95th percentile of the adapter's scrapes of the exporters.", "s",
                   [("histogram_quantile(0.95, sum by (le) (rate(accel_metrics_adapter_scrape_duration_seconds_bucket[$__rate_interval])))", "p95")], w=8))
    p.append(panel(L, "timeseries", "Exporter scrapes by result", "The adapter's scrapes of the exporters per second, by result.", "ops",
                   [("sum by (result) (rate(accel_metrics_adapter_scrapes_total[$__rate_interval]))", "{{result}}")], w=8))
    p.append(L.row("HorizontalPodAutoscalers (kube-state-metrics)"))
    p.append(panel(L, "timeseries", "Desired vs current replicas", "Replicas each HPA wants and has.", "none",
                   [(f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}}", "{{namespace}}/{{horizontalpodautoscaler}} desired"),
                    (f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}}", "{{namespace}}/{{horizontalpodautoscaler}} current", "B")]))
    p.append(panel(L, "timeseries", "HPAs unable to scale", "How many HPAs have their ScalingActive condition false: they cannot get their metrics (kubectl describe hpa says why).", "none",
                   [(f'count(kube_horizontalpodautoscaler_status_condition{{condition="ScalingActive", status="false", {hpa}}} == 1) or vector(0)',
                     "unable to scale")]))
    p.append(panel(L, "timeseries", "At the replica limit", "How many HPAs are held at their maxReplicas: demand beyond what they may scale to.", "none",
                   [(f"count(kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}} >= on (namespace, horizontalpodautoscaler) "
                     f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}) or vector(0)", "at maxReplicas")], w=24, h=6))
    return dashboard("accelmetrics-autoscaling", "AccelMetrics / Autoscaling", "The metrics adapter's health and freshness, and the HPAs scaling on it.",
                     [variable("namespace", "Namespace", "label_values(kube_horizontalpodautoscaler_status_current_replicas, namespace)")], p, ["autoscaling"])


DASHBOARDS = {"fleet.json": fleet, "node.json": node, "workload.json": workload, "inference.json": inference,
              "autoscaling.json": autoscaling}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2, sort_keys=True) + "\n"
        path = os.path.join(OUT, name)
        if check:
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("dashboards out of date (run scripts/generate-dashboards.py):", ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
