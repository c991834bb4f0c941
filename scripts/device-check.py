#!/usr/bin/env python3
"""Compares accel-exporter's NVML readings with nvidia-smi (and pynvml, torch when importable) on a real GPU,
and its GPM families (SM and tensor activity, memory bandwidth, PCIe rates) with pynvml's own GPM readings, idle
and under a bf16 matmul (torch, else an fp16 one with cupy), plus GPM's PCIe rate unit against a timed host-to-
device copy (torch).

Run by scripts/device-check.sh on the GPU machine, against an exporter it started on 127.0.0.1:9445. Python 3
standard library only; `pynvml` (nvidia-ml-py) and `torch` are used when importable.

    device-check.py [--url URL] [--out DIR] [--exporter-pid PID] [--no-load]   the check (exit 1 on any FAIL)
    device-check.py --load-worker [--copy] --device N --seconds S               one load generator (internal)
    device-check.py --wait-ready SECONDS                                       poll /readyz until it answers 200
    device-check.py --fetch PATH --to FILE                                     save one response body
    device-check.py --self-test                                                the parser's own tests

Writes $OUT/device-check.json, $OUT/report.md (the checks; device-check.sh adds the environment around them),
$OUT/metrics-idle.prom and $OUT/metrics-load.prom. Every check is one row: metric, nvidia-smi value, exporter
value, tolerance, and PASS / FAIL / ABSENT-OK (nvidia-smi says N/A and the exporter exports nothing) / SKIP / INFO.
An exception inside a check becomes a FAIL row, never a crash.
"""

import argparse
import gzip
import importlib.util
import json
import math
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:9445"

# The fields the brief names, plus volatile ECC and the throttle mask (old and new spelling): fields this nvidia-smi
# does not know are dropped after `--help-query-gpu` (or a per-field probe) says so, never failing the whole query.
SMI_FIELDS = [
    "uuid", "name", "pci.bus_id", "serial", "vbios_version", "driver_version",
    "utilization.gpu", "utilization.memory", "memory.used", "memory.total",
    "temperature.gpu", "temperature.memory", "power.draw", "enforced.power.limit",
    "clocks.gr", "clocks.sm", "clocks.mem", "clocks.video", "pstate", "fan.speed",
    "pcie.link.gen.current", "pcie.link.width.current",
    "ecc.errors.corrected.aggregate.total", "ecc.errors.uncorrected.aggregate.total",
    "ecc.errors.corrected.volatile.total", "ecc.errors.uncorrected.volatile.total",
    "clocks_event_reasons.active", "clocks_throttle_reasons.active",
]
NA_MARKERS = {"", "n/a", "[n/a]", "not supported", "[not supported]", "[unknown error]", "unknown error",
              "[insufficient permissions]", "[gpu requires reset]", "[not available]", "not available"}

MIB = 1048576
PCIE_GEN_SPEED = {1: 2.5e9, 2: 5e9, 3: 8e9, 4: 16e9, 5: 32e9, 6: 64e9}
SENTINEL_LIMIT = 9.2e18
# Throttle ("clocks event") reason bits, for the INFO row that decodes nvidia-smi's mask.
THROTTLE_BITS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}

TOLERANCES = {
    "identity": "exact; model = nvidia-smi name less a leading 'NVIDIA ' (or the full name); PCI bus id compared as "
                "domain:bus:dev.fn numbers (00000000:18:00.0 == 0000:18:00.0)",
    "memory total": "exact to the MiB nvidia-smi prints (floor(bytes / 2^20) == MiB)",
    "memory used": "± 64 MiB",
    "memory reserved": "present, 0 ≤ reserved < total (± 1 MiB of pynvml's v2 reading when pynvml is importable)",
    "temperature": "± 3 °C",
    "power draw": "± max(15 %, 20 W)",
    "power limit": "± 1 W (static)",
    "clocks": "± max(10 %, 30 MHz) (they move)",
    "utilization": "± 0.15 (15 points; it moves)",
    "pstate": "exact (idle)",
    "pcie link": "exact (gen → T/s: 2.5e9, 5e9, 8e9, 16e9, 32e9, 64e9)",
    "ecc": "exact",
    "energy": "strictly increases over ≥ 3 s; within [pynvml before − 2 s × max(P, 100 W), pynvml after + 1 J]",
    "moving values": "the exporter is read just before and just after nvidia-smi; the closer reading is compared",
    "load": "median of 3 reads 2 s apart: utilization > 0.5, power ≥ 1.2 × idle, SM clock > 0, energy rising, "
            "memory used ≥ idle + 2 GiB",
    "scrape latency": "p50 of 50 sequential scrapes < 100 ms",
    "sanity": "no NaN, no |value| ≥ 9.2e18, counters ≥ 0, ratios in [0, 1], no duplicate series",
    "gpm support": "GPM families present exactly where pynvml's nvmlGpmQueryDeviceSupport says supported",
    "gpm idle": "± 0.05 of pynvml's own GPM reading over the second before (both are 1 s averages)",
    "gpm load": "± 0.10 of pynvml's own GPM reading over the second before (the load moves less than idle noise)",
    "tensor under load": "median of 3 reads ≥ max(0.30, idle + 0.20)",
    "pcie unit": "GPM's PCIe rx during a timed host-to-device copy within [0.7, 1.4] × the copy's own bytes/s",
}
# GPM metric ids (pynvml) the checks read through pynvml itself, and the exporter series each one becomes.
GPM_REFERENCE = {
    "sm": (2, "accelerator_sm_active_ratio", {}),
    "occupancy": (3, "accelerator_sm_occupancy_ratio", {}),
    "tensor": (5, "accelerator_pipe_active_ratio", {"pipe": "tensor"}),
    "graphics": (1, "accelerator_engine_utilization_ratio", {"engine": "gfx"}),
    "dram": (10, "accelerator_memory_bandwidth_utilization_ratio", {}),
    "pcie_tx": (20, "accelerator_pcie_bandwidth_bytes_per_second", {"direction": "tx"}),
    "pcie_rx": (21, "accelerator_pcie_bandwidth_bytes_per_second", {"direction": "rx"}),
}


class Deadline(Exception):
    pass


# --------------------------------------------------------------------------------------------------------------------
# Prometheus text format (0.0.4) parser: `name{label="value",...} value [timestamp]`, comments ignored.

class ParseError(ValueError):
    pass


_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_prometheus_text(text):
    """Returns [(name, {label: value}, float)] in order. Raises ParseError with the line number on bad input."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(_parse_sample_line(line))
        except ParseError as e:
            raise ParseError(f"line {lineno}: {e}: {line[:200]!r}") from None
    return out


def _parse_sample_line(line):
    i = 0
    n = len(line)
    while i < n and line[i] in " \t":
        i += 1
    m = _NAME_RE.match(line, i)
    if not m:
        raise ParseError("no metric name")
    name = m.group(0)
    i = m.end()
    while i < n and line[i] in " \t":
        i += 1
    labels = {}
    if i < n and line[i] == "{":
        i += 1
        while True:
            while i < n and line[i] in " \t":
                i += 1
            if i < n and line[i] == "}":
                i += 1
                break
            lm = _LABEL_RE.match(line, i)
            if not lm:
                raise ParseError("bad label name")
            lname = lm.group(0)
            i = lm.end()
            while i < n and line[i] in " \t":
                i += 1
            if i >= n or line[i] != "=":
                raise ParseError(f"expected '=' after label {lname}")
            i += 1
            while i < n and line[i] in " \t":
                i += 1
            if i >= n or line[i] != '"':
                raise ParseError(f"expected '\"' to open label {lname}'s value")
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise ParseError(f"unterminated value of label {lname}")
                c = line[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise ParseError("dangling backslash")
                    e = line[i + 1]
                    buf.append({"\\": "\\", '"': '"', "n": "\n"}.get(e, "\\" + e))
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            if lname in labels:
                raise ParseError(f"duplicate label {lname}")
            labels[lname] = "".join(buf)
            while i < n and line[i] in " \t":
                i += 1
            if i < n and line[i] == ",":
                i += 1
                continue
            if i < n and line[i] == "}":
                i += 1
                break
            raise ParseError("expected ',' or '}' after a label")
    rest = line[i:].split()
    if not rest or len(rest) > 2:
        raise ParseError("expected a value and an optional timestamp")
    try:
        value = float(rest[0])
    except ValueError:
        raise ParseError(f"bad value {rest[0]!r}") from None
    if len(rest) == 2:
        try:
            int(rest[1])
        except ValueError:
            raise ParseError(f"bad timestamp {rest[1]!r}") from None
    return name, labels, value


class Metrics:
    """One parsed /metrics response."""

    def __init__(self, text, fetched_at=None, elapsed=None):
        self.text = text
        self.fetched_at = fetched_at if fetched_at is not None else time.time()
        self.elapsed = elapsed
        self.samples = parse_prometheus_text(text)
        self.by_name = {}
        for name, labels, value in self.samples:
            self.by_name.setdefault(name, []).append((labels, value))

    def find(self, name, **labels):
        return [(l, v) for l, v in self.by_name.get(name, []) if all(l.get(k) == want for k, want in labels.items())]

    def one(self, name, **labels):
        """The value of the one series matching, None if none; more than one match is an error."""
        found = self.find(name, **labels)
        if not found:
            return None
        if len(found) > 1:
            raise ValueError(f"{len(found)} series match {name}{labels}")
        return found[0][1]

    def duplicates(self):
        seen = {}
        dups = []
        for name, labels, _ in self.samples:
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                dups.append(key)
            seen[key] = True
        return dups


# --------------------------------------------------------------------------------------------------------------------
# HTTP

# Straight to the exporter on loopback, whatever http_proxy the machine's environment sets.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url, timeout=5.0, headers=None):
    """(status, body bytes, headers, seconds). Decompresses gzip."""
    req = urllib.request.Request(url, headers=headers or {})
    t0 = time.perf_counter()
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            body = resp.read()
            status = resp.status
            hdrs = dict(resp.headers.items())
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
        hdrs = dict(e.headers.items()) if e.headers else {}
    elapsed = time.perf_counter() - t0
    if hdrs.get("Content-Encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    return status, body, hdrs, elapsed


def fetch_metrics(base, path="/metrics"):
    fetched_at = time.time()
    status, body, _, elapsed = http_get(base + path, timeout=10)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
    return Metrics(body.decode("utf-8"), fetched_at, elapsed)


# --------------------------------------------------------------------------------------------------------------------
# nvidia-smi

def run(cmd, timeout=30):
    """(returncode, stdout, stderr); a missing program or timeout is a non-zero return, not an exception."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except FileNotFoundError as e:
        return 127, "", str(e)
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout}s"


class NvidiaSmi:
    def __init__(self, exe="nvidia-smi"):
        self.exe = exe
        self.fields = None        # the subset of SMI_FIELDS this nvidia-smi knows
        self.unknown_fields = []

    def _known_fields(self):
        if self.fields is not None:
            return self.fields
        rc, out, err = run([self.exe, "--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv,noheader,nounits"])
        if rc == 0:
            self.fields = list(SMI_FIELDS)
            return self.fields
        rc, out, _ = run([self.exe, "--help-query-gpu"])
        known = set(re.findall(r'"([a-z0-9_.]+)"', out)) if rc == 0 else set()
        if known:
            self.fields = [f for f in SMI_FIELDS if f in known]
        else:  # probe one field at a time
            self.fields = [f for f in SMI_FIELDS
                           if run([self.exe, "--query-gpu=" + f, "--format=csv,noheader,nounits"], timeout=15)[0] == 0]
        if "uuid" not in self.fields:
            raise RuntimeError(f"nvidia-smi cannot query uuid: {err.strip()[:300]}")
        self.unknown_fields = [f for f in SMI_FIELDS if f not in self.fields]
        return self.fields

    def query(self):
        """[{field: raw string}] per GPU; fields this nvidia-smi does not know are missing from the dicts."""
        fields = self._known_fields()
        rc, out, err = run([self.exe, "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])
        if rc != 0:
            raise RuntimeError(f"nvidia-smi --query-gpu failed ({rc}): {(err or out).strip()[:300]}")
        gpus = []
        for line in out.strip().splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != len(fields):  # a value with a comma in it (a GPU name?): keep the first fields aligned
                parts = parts[:len(fields)] + [""] * (len(fields) - len(parts))
            gpus.append(dict(zip(fields, parts)))
        return gpus

    def cuda_version(self):
        rc, out, _ = run([self.exe], timeout=30)
        m = re.search(r"CUDA Version:\s*([0-9.]+)", out or "")
        return m.group(1) if m else None


def smi_num(raw):
    """A number from an nvidia-smi field, None for N/A-style markers (and for anything unparseable)."""
    if raw is None or raw.strip().lower() in NA_MARKERS:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def norm_pci(bus_id):
    """`00000000:18:00.0` and `0000:18:00.0` → `0000:18:00.0`; None when it is not a PCI address."""
    parts = (bus_id or "").strip().lower().split(":")
    if len(parts) != 3 or "." not in parts[2]:
        return None
    try:
        dev, fn = parts[2].split(".")
        return f"{int(parts[0], 16):04x}:{int(parts[1], 16):02x}:{int(dev, 16):02x}.{int(fn, 16):x}"
    except ValueError:
        return None


def smi_is_na(raw):
    return raw is not None and raw.strip().lower() in NA_MARKERS


# --------------------------------------------------------------------------------------------------------------------
# pynvml (optional)

class Nvml:
    def __init__(self):
        self.mod = None
        self.error = None
        self.version = None
        try:
            import pynvml  # nvidia-ml-py
            pynvml.nvmlInit()
            self.mod = pynvml
            try:
                v = pynvml.nvmlSystemGetNVMLVersion()
                self.version = v.decode() if isinstance(v, bytes) else v
            except Exception:
                pass
        except Exception as e:  # not installed, or no driver
            self.error = f"{type(e).__name__}: {e}"

    @property
    def ok(self):
        return self.mod is not None

    def handle(self, uuid):
        try:
            return self.mod.nvmlDeviceGetHandleByUUID(uuid)
        except TypeError:
            return self.mod.nvmlDeviceGetHandleByUUID(uuid.encode())

    def call(self, fn_names, *args):
        """Calls the first of fn_names the module has. Returns (value, None) or (None, error string)."""
        if isinstance(fn_names, str):
            fn_names = [fn_names]
        for fn in fn_names:
            f = getattr(self.mod, fn, None)
            if f is None:
                continue
            try:
                return f(*args), None
            except Exception as e:
                return None, f"{fn}: {e}"
        return None, f"pynvml has none of {fn_names}"

    def not_supported(self, err):
        return err is not None and ("Not Supported" in err or "NOT_SUPPORTED" in err)

    def gpm_supported(self, handle):
        """True / False from nvmlGpmQueryDeviceSupport, or None with the error (old pynvml or driver)."""
        v, err = self.call("nvmlGpmQueryDeviceSupport", handle)
        return (None, err) if err else (bool(v.isSupportedDevice), None)

    def gpm_window(self, handles, seconds=1.0):
        """pynvml's own GPM reading over `seconds` for each handle: {key: (value in NVML's unit or None, unit)},
        keys as GPM_REFERENCE (percent, or the *_PER_SEC unit NVML names in metricInfo)."""
        m = self.mod
        taken = []
        for h in handles:
            a, b = m.nvmlGpmSampleAlloc(), m.nvmlGpmSampleAlloc()
            m.nvmlGpmSampleGet(h, a)
            taken.append((h, a, b))
        time.sleep(seconds)
        out = []
        for h, a, b in taken:
            try:
                m.nvmlGpmSampleGet(h, b)
                get = m.c_nvmlGpmMetricsGet_t()
                get.version = m.NVML_GPM_METRICS_GET_VERSION
                keys = list(GPM_REFERENCE)
                get.numMetrics = len(keys)
                get.sample1, get.sample2 = a, b
                for i, key in enumerate(keys):
                    get.metrics[i].metricId = GPM_REFERENCE[key][0]
                m.nvmlGpmMetricsGet(get)
                unit = lambda i: (get.metrics[i].metricInfo.unit or b"").decode(errors="replace")
                out.append({key: (get.metrics[i].value if get.metrics[i].nvmlReturn == 0 else None, unit(i))
                            for i, key in enumerate(keys)})
            finally:
                m.nvmlGpmSampleFree(a)
                m.nvmlGpmSampleFree(b)
        return out

    def shutdown(self):
        if self.mod is not None:
            try:
                self.mod.nvmlShutdown()
            except Exception:
                pass


# --------------------------------------------------------------------------------------------------------------------
# The checks

def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if abs(v) >= 1e15:
            return f"{v:.6g}"
        if v == int(v):
            return str(int(v))
        return f"{v:.6g}" if abs(v) < 1e6 else f"{v:.1f}"
    return str(v)


class Checker:
    def __init__(self, args):
        self.args = args
        self.base = args.url.rstrip("/")
        self.out = args.out
        self.smi = NvidiaSmi(args.nvidia_smi)
        self.nvml = None
        self.rows = []
        self.info = {}
        self.gpu_index = {}   # uuid -> short index for the report
        self.deadline = time.monotonic() + args.deadline
        self.idle = {}        # uuid -> {"util":…, "power":…, "energy":…, "mem_used":…}
        self.gpm = {}         # uuid -> True/False: pynvml says GPM is supported

    # -- rows ------------------------------------------------------------------------------------------------------
    def row(self, phase, gpu, check, expected, actual, tolerance, status, note=""):
        self.rows.append({
            "phase": phase, "gpu": gpu, "check": check, "nvidia_smi": fmt(expected), "exporter": fmt(actual),
            "tolerance": tolerance, "status": status, "note": note,
        })
        mark = {"PASS": "ok  ", "FAIL": "FAIL", "ABSENT-OK": "abs ", "SKIP": "skip", "INFO": "info"}.get(status, status)
        print(f"  [{mark}] {phase:5} {self.gpu_index.get(gpu, gpu or '-'):>3} {check}: smi={fmt(expected)} "
              f"exporter={fmt(actual)} {note}".rstrip(), flush=True)

    def guarded(self, phase, gpu, check, fn, *a, **kw):
        """Runs one check; an exception becomes a FAIL row."""
        if time.monotonic() > self.deadline:
            self.row(phase, gpu, check, None, None, "", "SKIP", "deadline reached")
            return None
        try:
            return fn(*a, **kw)
        except Deadline:
            raise
        except Exception as e:
            tb = traceback.format_exc(limit=3).strip().splitlines()
            self.row(phase, gpu, check, None, None, "", "FAIL", f"exception: {type(e).__name__}: {e} ({tb[-3] if len(tb) >= 3 else ''})".strip())
            return None

    def compare(self, phase, uuid, check, smi_raw, expected, readings, within, tolerance, scale_note=""):
        """Numeric comparison of nvidia-smi's value with the exporter's (closest of `readings`, which may hold
        None for absent). `within(expected, actual) -> bool`."""
        actuals = [r for r in readings if r is not None]
        if smi_raw is None:
            status = "SKIP" if not actuals else "INFO"
            self.row(phase, uuid, check, None, actuals[0] if actuals else None, tolerance, status,
                     "this nvidia-smi does not know the field")
            return
        if expected is None:  # N/A in nvidia-smi
            if not actuals:
                self.row(phase, uuid, check, smi_raw, None, "absent", "ABSENT-OK", "")
            else:
                self.row(phase, uuid, check, smi_raw, actuals[0], "absent", "FAIL",
                         "nvidia-smi says N/A but the exporter exports a value")
            return
        if not actuals:
            self.row(phase, uuid, check, expected, None, tolerance, "FAIL", "absent from the exporter")
            return
        best = min(actuals, key=lambda a: abs(a - expected))
        ok = within(expected, best)
        self.row(phase, uuid, check, expected, best, tolerance, "PASS" if ok else "FAIL",
                 scale_note if ok else f"diff {fmt(best - expected)} {scale_note}".strip())

    # -- helpers ---------------------------------------------------------------------------------------------------
    def bracket(self):
        """Exporter read, nvidia-smi, exporter read: the moving values are compared against the closer read."""
        before = fetch_metrics(self.base)
        gpus = self.smi.query()
        after = fetch_metrics(self.base)
        return before, gpus, after

    @staticmethod
    def vals(ms, name, uuid, **labels):
        out = []
        for m in ms:
            found = m.find(name, accelerator=uuid, **labels)
            if len(found) > 1:
                raise ValueError(f"{len(found)} series for {name}{labels} on {uuid}")
            out.append(found[0][1] if found else None)
        return out

    # -- phases ----------------------------------------------------------------------------------------------------
    def run(self):
        self.info["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.info["hostname"] = socket.gethostname()
        self.nvml = Nvml()
        self.info["pynvml"] = "ok (NVML " + str(self.nvml.version) + ")" if self.nvml.ok else f"unavailable: {self.nvml.error}"
        print(f"pynvml: {self.info['pynvml']}", flush=True)

        # Idle phase.
        # The exporter-only checks (sanity, latency, negotiation) still run when nvidia-smi fails.
        try:
            before = fetch_metrics(self.base)
        except Exception as e:
            self.row("idle", "", "read /metrics", None, None, "", "FAIL", f"{type(e).__name__}: {e}")
            return
        self.save("metrics-idle.prom", before.text)
        try:
            gpus = self.smi.query()
        except Exception as e:
            self.row("idle", "", "nvidia-smi --query-gpu", None, None, "", "FAIL", f"{type(e).__name__}: {e}")
            gpus = []
        after = self.guarded("idle", "", "read /metrics again", fetch_metrics, self.base) or before
        self.record_idle(before, gpus)
        self.info["nvidia_smi_unknown_fields"] = self.smi.unknown_fields
        for i, g in enumerate(gpus):
            self.gpu_index[g.get("uuid", "")] = str(i)
        self.info["gpus"] = [{"index": i, "uuid": g.get("uuid"), "name": g.get("name"), "pci_bus_id": g.get("pci.bus_id")}
                             for i, g in enumerate(gpus)]

        self.guarded("idle", "", "global", self.check_global, before, gpus)
        for g in gpus:
            uuid = g.get("uuid", "")
            self.guarded("idle", uuid, "identity", self.check_identity, before, g)
            self.guarded("idle", uuid, "readings", self.check_readings, "idle", [before, after], g)
            self.guarded("idle", uuid, "families", self.check_families, before, g)
        self.guarded("idle", "", "gpm", self.check_gpm, "idle", gpus)
        self.guarded("idle", "", "energy", self.check_energy, gpus)
        self.guarded("idle", "", "sanity", self.check_sanity, "idle", before)
        self.guarded("idle", "", "scrape latency", self.check_latency)
        self.guarded("idle", "", "openmetrics", self.check_openmetrics)

        if not gpus:
            self.row("load", "", "load phase", None, None, "", "SKIP", "no GPU from nvidia-smi")
        elif self.args.no_load:
            self.row("load", "", "load phase", None, None, "", "SKIP", "--no-load")
        else:
            self.guarded("load", "", "load phase", self.load_phase, gpus)

        if self.args.exporter_pid:
            self.guarded("end", "", "exporter memory", self.check_rss, self.args.exporter_pid)
        self.nvml.shutdown()

    def record_idle(self, m, gpus):
        """The idle baseline the load assertions compare against."""
        for g in gpus:
            uuid = g.get("uuid", "")
            d = self.idle.setdefault(uuid, {})
            for key, name, labels in (("util", "accelerator_utilization_ratio", {}), ("power", "accelerator_power_watts", {}),
                                      ("mem_used", "accelerator_memory_used_bytes", {"memory": "vram"})):
                try:
                    d[key] = m.one(name, accelerator=uuid, **labels)
                except ValueError:
                    d[key] = None

    def check_global(self, m, gpus):
        smi_uuids = {g["uuid"] for g in gpus}
        exp_uuids = {l.get("accelerator") for l, _ in m.find("accelerator_info", vendor="nvidia")}
        status = "PASS" if smi_uuids == exp_uuids and smi_uuids else "FAIL"
        note = ""
        if smi_uuids - exp_uuids:
            note += f"missing in exporter: {sorted(smi_uuids - exp_uuids)} "
        if exp_uuids - smi_uuids:
            note += f"unknown to nvidia-smi: {sorted(exp_uuids - smi_uuids)}"
        self.row("idle", "", "GPU set (accelerator_info vendor=nvidia)", len(smi_uuids), len(exp_uuids), "same UUIDs", status, note.strip())

        ups = [(l.get("accelerator"), v) for l, v in m.find("accelerator_up")]
        bad = [a for a, v in ups if v != 1]
        self.row("idle", "", "accelerator_up == 1 (all)", 1, f"{len(ups) - len(bad)}/{len(ups)}", "exact",
                 "PASS" if ups and not bad else "FAIL", f"down: {bad}" if bad else ("" if ups else "no accelerator_up series"))

        v = m.one("accel_exporter_collector_success", collector="nvidia")
        self.row("idle", "", 'accel_exporter_collector_success{collector="nvidia"}', 1, v, "exact",
                 "PASS" if v == 1 else "FAIL")
        others = {l.get("collector"): v for l, v in m.find("accel_exporter_collector_success") if l.get("collector") != "nvidia"}
        if others:
            self.row("idle", "", "other collectors' success", None, json.dumps(others), "", "INFO")

        # Driver facts.
        driver_versions = {g.get("driver_version") for g in gpus}
        di = m.find("accelerator_driver_info", vendor="nvidia")
        if len(di) != 1:
            di_all = m.find("accelerator_driver_info")
            self.row("idle", "", "accelerator_driver_info{vendor=nvidia}", 1, len(di), "exactly one series", "FAIL",
                     "; ".join(json.dumps(l, sort_keys=True) for l, _ in di_all)[:300] or "no accelerator_driver_info series")
        else:
            labels, value = di[0]
            want = next(iter(driver_versions)) if len(driver_versions) == 1 else None
            self.row("idle", "", "driver_info version", want, labels.get("version"), "exact",
                     "PASS" if labels.get("version") == want and value == 1 else "FAIL")
            cuda = self.smi.cuda_version()
            if cuda is None and self.nvml.ok:
                v, _ = self.nvml.call("nvmlSystemGetCudaDriverVersion")
                if v:
                    cuda = f"{v // 1000}.{(v % 1000) // 10}"
            got = labels.get("cuda_version")
            if cuda is None:
                self.row("idle", "", "driver_info cuda_version", None, got, "exact", "SKIP", "nvidia-smi shows no CUDA version")
            else:
                self.row("idle", "", "driver_info cuda_version", cuda, got, "exact", "PASS" if got == cuda else "FAIL")
            node = labels.get("node")
            self.row("idle", "", "driver_info node", None, node, "non-empty", "PASS" if node else "FAIL")

    def check_identity(self, m, g):
        uuid = g["uuid"]
        info = m.find("accelerator_info", accelerator=uuid)
        if len(info) != 1:
            self.row("idle", uuid, "accelerator_info", 1, len(info), "exactly one series", "FAIL")
            return
        labels, value = info[0]
        self.row("idle", uuid, "accelerator_info value", 1, value, "exact", "PASS" if value == 1 else "FAIL")

        def exact(check, want, got, casefold=False):
            a, b = (want or "").lower() if casefold else want, (got or "").lower() if casefold else got
            self.row("idle", uuid, check, want, got, "exact", "PASS" if a == b else "FAIL")

        exact("vendor", "nvidia", labels.get("vendor"))
        # DESIGN names the model without the vendor ("H100 80GB HBM3"); the full name is accepted too.
        name = g.get("name") or ""
        short = name[len("NVIDIA "):] if name.startswith("NVIDIA ") else name
        model = labels.get("model")
        self.row("idle", uuid, "model (nvidia-smi name less 'NVIDIA ')", short, model, TOLERANCES["identity"],
                 "PASS" if model in (short, name) and model else "FAIL", "full name" if model == name != short else "")
        # The exporter may use the sysfs form 0000:18:00.0 for nvidia-smi's 00000000:18:00.0: same domain/bus/dev.fn.
        want_pci, got_pci = g.get("pci.bus_id"), labels.get("pci_bus_id")
        self.row("idle", uuid, "pci_bus_id", want_pci, got_pci, TOLERANCES["identity"],
                 "PASS" if want_pci and norm_pci(want_pci) == norm_pci(got_pci) else "FAIL")
        exact("driver", "nvidia", labels.get("driver"))
        for field, label in (("vbios_version", "vbios"), ("serial", "serial")):
            raw = g.get(field)
            if raw is None:
                self.row("idle", uuid, label, None, labels.get(label), "exact", "SKIP", "this nvidia-smi does not know the field")
            elif smi_is_na(raw):
                self.row("idle", uuid, label, raw, labels.get(label), "absent", "ABSENT-OK" if not labels.get(label) else "FAIL")
            else:
                exact(label, raw, labels.get(label))
        node = labels.get("node")
        want_node = os.environ.get("NODE_NAME") or socket.gethostname()
        self.row("idle", uuid, "node", want_node, node, "exact (NODE_NAME else host name)",
                 "PASS" if node == want_node else "FAIL")
        # Every other series of this device must carry the same model label (one identity).
        models = {l.get("model") for name, l, _ in m.samples if l.get("accelerator") == uuid}
        self.row("idle", uuid, "one model label on all series", labels.get("model"), ", ".join(sorted(x or "" for x in models)),
                 "exact", "PASS" if models == {labels.get("model")} else "FAIL")

    def check_readings(self, phase, ms, g):
        uuid = g["uuid"]

        def num(field, scale=1.0):
            raw = g.get(field)
            v = smi_num(raw)
            return raw, (v * scale if v is not None else None)

        def abs_tol(t):
            return lambda e, a: abs(a - e) <= t

        def rel_tol(frac, floor):
            return lambda e, a: abs(a - e) <= max(frac * abs(e), floor)

        up = self.vals(ms, "accelerator_up", uuid)
        self.row(phase, uuid, "accelerator_up", 1, up[0], "exact", "PASS" if up[0] == 1 else "FAIL")

        raw, e = num("utilization.gpu", 0.01)
        self.compare(phase, uuid, "accelerator_utilization_ratio", raw, e,
                     self.vals(ms, "accelerator_utilization_ratio", uuid), abs_tol(0.15), TOLERANCES["utilization"])
        raw, e = num("utilization.memory", 0.01)
        self.compare(phase, uuid, 'accelerator_engine_utilization_ratio{engine="memory_controller"}', raw, e,
                     self.vals(ms, "accelerator_engine_utilization_ratio", uuid, engine="memory_controller"),
                     abs_tol(0.15), TOLERANCES["utilization"])

        raw, e = num("memory.total", MIB)
        total = self.vals(ms, "accelerator_memory_total_bytes", uuid, memory="vram")
        self.compare(phase, uuid, 'accelerator_memory_total_bytes{memory="vram"}', raw, e, total,
                     lambda e, a: math.floor(a / MIB) == round(e / MIB), TOLERANCES["memory total"])
        raw, e = num("memory.used", MIB)
        self.compare(phase, uuid, 'accelerator_memory_used_bytes{memory="vram"}', raw, e,
                     self.vals(ms, "accelerator_memory_used_bytes", uuid, memory="vram"), abs_tol(64 * MIB),
                     TOLERANCES["memory used"])
        if phase == "idle":
            reserved = self.vals(ms, "accelerator_memory_reserved_bytes", uuid, memory="vram")[0]
            t = total[0]
            ok = reserved is not None and t is not None and 0 <= reserved < t
            note = ""
            want = None
            if self.nvml.ok and reserved is not None:
                info, err = self.nvml.call("nvmlDeviceGetMemoryInfo", self.nvml.handle(uuid), getattr(self.nvml.mod, "nvmlMemory_v2", None))
                if info is not None and hasattr(info, "reserved"):
                    want = float(info.reserved)
                    ok = ok and abs(want - reserved) <= MIB
                    note = "vs pynvml nvmlMemory_v2.reserved"
                elif err:
                    note = f"pynvml: {err}"
            if reserved is None:
                note = "absent from the exporter"
            self.row(phase, uuid, 'accelerator_memory_reserved_bytes{memory="vram"}', want, reserved,
                     TOLERANCES["memory reserved"], "PASS" if ok else "FAIL", note)

        for field, sensor in (("temperature.gpu", "gpu"), ("temperature.memory", "memory")):
            raw, e = num(field)
            self.compare(phase, uuid, f'accelerator_temperature_celsius{{sensor="{sensor}"}}', raw, e,
                         self.vals(ms, "accelerator_temperature_celsius", uuid, sensor=sensor), abs_tol(3),
                         TOLERANCES["temperature"])

        raw, e = num("power.draw")
        self.compare(phase, uuid, "accelerator_power_watts", raw, e, self.vals(ms, "accelerator_power_watts", uuid),
                     rel_tol(0.15, 20), TOLERANCES["power draw"])
        raw, e = num("enforced.power.limit")
        self.compare(phase, uuid, "accelerator_power_limit_watts", raw, e,
                     self.vals(ms, "accelerator_power_limit_watts", uuid), abs_tol(1), TOLERANCES["power limit"])

        for field, clock in (("clocks.gr", "graphics"), ("clocks.sm", "sm"), ("clocks.mem", "memory"), ("clocks.video", "video")):
            raw, e = num(field, 1e6)
            self.compare(phase, uuid, f'accelerator_clock_hertz{{clock="{clock}"}}', raw, e,
                         self.vals(ms, "accelerator_clock_hertz", uuid, clock=clock), rel_tol(0.10, 30e6), TOLERANCES["clocks"])

        raw = g.get("pcie.link.gen.current")
        gen = smi_num(raw)
        self.compare(phase, uuid, "accelerator_pcie_link_speed_transfers_per_second", raw,
                     PCIE_GEN_SPEED.get(int(gen)) if gen is not None else None,
                     self.vals(ms, "accelerator_pcie_link_speed_transfers_per_second", uuid), abs_tol(0), TOLERANCES["pcie link"],
                     f"gen {fmt(gen)}")
        raw, e = num("pcie.link.width.current")
        self.compare(phase, uuid, "accelerator_pcie_link_width", raw, e, self.vals(ms, "accelerator_pcie_link_width", uuid),
                     abs_tol(0), TOLERANCES["pcie link"])

        raw = g.get("pstate")
        want = None
        if raw is not None and not smi_is_na(raw):
            mm = re.fullmatch(r"P(\d+)", raw.strip())
            want = float(mm.group(1)) if mm else None
        if phase == "idle":
            self.compare(phase, uuid, "accelerator_performance_state", raw, want,
                         self.vals(ms, "accelerator_performance_state", uuid), abs_tol(0), TOLERANCES["pstate"], f"{raw}")
        else:
            got = self.vals(ms, "accelerator_performance_state", uuid)
            self.row(phase, uuid, "accelerator_performance_state", want, got[-1], "", "INFO", f"{raw}")

        # Fans: nvidia-smi reports one fan.speed; the exporter's sensor label is "fan" (else any one fan series).
        raw, e = num("fan.speed", 0.01)
        fans = [m.find("accelerator_fan_speed_ratio", accelerator=uuid) for m in ms]
        def pick(found):
            if not found:
                return None
            for l, v in found:
                if l.get("sensor") == "fan":
                    return v
            return found[0][1]
        self.compare(phase, uuid, "accelerator_fan_speed_ratio", raw, e, [pick(f) for f in fans], abs_tol(0.10),
                     "± 0.10; absent when N/A")

        if phase == "idle":
            for field, family, typ in (
                ("ecc.errors.corrected.aggregate.total", "accelerator_errors_total", "ecc_corrected"),
                ("ecc.errors.uncorrected.aggregate.total", "accelerator_errors_total", "ecc_uncorrected"),
                ("ecc.errors.corrected.volatile.total", "accelerator_volatile_errors_total", "ecc_corrected"),
                ("ecc.errors.uncorrected.volatile.total", "accelerator_volatile_errors_total", "ecc_uncorrected"),
            ):
                raw, e = num(field)
                self.compare(phase, uuid, f'{family}{{type="{typ}"}}', raw, e, self.vals(ms, family, uuid, type=typ),
                             abs_tol(0), TOLERANCES["ecc"])

            # PCIe throughput: no nvidia-smi field; present and ≥ 0 unless NVML says not supported.
            for direction in ("tx", "rx"):
                v = self.vals(ms, "accelerator_pcie_bandwidth_bytes_per_second", uuid, direction=direction)[0]
                check = f'accelerator_pcie_bandwidth_bytes_per_second{{direction="{direction}"}}'
                if v is not None:
                    self.row(phase, uuid, check, None, v, "present, ≥ 0", "PASS" if v >= 0 else "FAIL")
                else:
                    unsupported = False
                    if self.nvml.ok:
                        counter = getattr(self.nvml.mod, "NVML_PCIE_UTIL_TX_BYTES" if direction == "tx" else "NVML_PCIE_UTIL_RX_BYTES", 0)
                        _, err = self.nvml.call("nvmlDeviceGetPcieThroughput", self.nvml.handle(uuid), counter)
                        unsupported = self.nvml.not_supported(err)
                    self.row(phase, uuid, check, "not supported" if unsupported else None, None, "present, ≥ 0",
                             "ABSENT-OK" if unsupported else "FAIL", "pynvml: NOT_SUPPORTED" if unsupported else "absent")

            # Throttle reasons: every value 0/1, and the active set (either read) equals nvidia-smi's decoded mask.
            found = ms[0].find("accelerator_throttle_active", accelerator=uuid)
            bad = [(l.get("reason"), v) for l, v in found if v not in (0.0, 1.0)]
            self.row(phase, uuid, "accelerator_throttle_active values ∈ {0,1}", None, f"{len(found)} reasons",
                     "0 or 1", "PASS" if found and not bad else "FAIL",
                     f"bad: {bad}" if bad else ("" if found else "no accelerator_throttle_active series"))
            known = set(THROTTLE_BITS.values())
            actives = [sorted(l.get("reason") for l, v in m.find("accelerator_throttle_active", accelerator=uuid)
                              if v == 1 and l.get("reason") in known) for m in ms]
            mask_raw = g.get("clocks_event_reasons.active") or g.get("clocks_throttle_reasons.active")
            want = None
            if mask_raw and not smi_is_na(mask_raw):
                try:
                    mask = int(mask_raw, 16)
                    want = sorted(n for bit, n in THROTTLE_BITS.items() if mask & bit)
                except ValueError:
                    pass
            shown = [",".join(a) or "none" for a in actives]
            if want is None or not found:
                self.row(phase, uuid, "throttle reasons active", mask_raw, " | ".join(shown), "", "INFO")
            else:
                self.row(phase, uuid, "throttle reasons active (= nvidia-smi mask)", f"{mask_raw} ({','.join(want) or 'none'})",
                         " | ".join(shown), "same set in either read", "PASS" if want in actives else "FAIL")

    def check_families(self, m, g):
        """Which families the exporter has for this GPU (INFO)."""
        uuid = g["uuid"]
        names = sorted({name for name, l, _ in m.samples if l.get("accelerator") == uuid})
        self.row("idle", uuid, "families exported for this GPU", None, len(names), "", "INFO", " ".join(n.replace("accelerator_", "") for n in names))

    def check_energy(self, gpus):
        for g in gpus:
            self.gpu_index.setdefault(g["uuid"], "?")
        p_before = {}
        if self.nvml.ok:
            for g in gpus:
                v, _ = self.nvml.call("nvmlDeviceGetTotalEnergyConsumption", self.nvml.handle(g["uuid"]))
                p_before[g["uuid"]] = v / 1000.0 if v is not None else None
        m1 = fetch_metrics(self.base)
        p_after = {}
        if self.nvml.ok:
            for g in gpus:
                v, _ = self.nvml.call("nvmlDeviceGetTotalEnergyConsumption", self.nvml.handle(g["uuid"]))
                p_after[g["uuid"]] = v / 1000.0 if v is not None else None
        time.sleep(3.2)
        m2 = fetch_metrics(self.base)
        for g in gpus:
            uuid = g["uuid"]
            e1 = m1.one("accelerator_energy_joules_total", accelerator=uuid)
            e2 = m2.one("accelerator_energy_joules_total", accelerator=uuid)
            self.idle.setdefault(uuid, {})["energy"] = e2
            if e1 is None or e2 is None:
                self.row("idle", uuid, "accelerator_energy_joules_total increases over 3 s", None, None,
                         TOLERANCES["energy"], "FAIL", "absent from the exporter")
                continue
            self.row("idle", uuid, "accelerator_energy_joules_total increases over 3 s", None, f"+{fmt(e2 - e1)} J",
                     "> 0", "PASS" if e2 > e1 else "FAIL", f"{fmt(e1)} → {fmt(e2)}; ≈ {fmt((e2 - e1) / (m2.fetched_at - m1.fetched_at))} W")
            if self.nvml.ok and p_before.get(uuid) is not None and p_after.get(uuid) is not None:
                power = smi_num(g.get("power.draw")) or 0.0
                lo = p_before[uuid] - 2.0 * max(power, 100.0)
                hi = p_after[uuid] + 1.0
                self.row("idle", uuid, "accelerator_energy_joules_total vs pynvml TotalEnergyConsumption/1000",
                         p_after[uuid], e1, TOLERANCES["energy"], "PASS" if lo <= e1 <= hi else "FAIL",
                         "" if lo <= e1 <= hi else f"outside [{fmt(lo)}, {fmt(hi)}]")
            elif not self.nvml.ok:
                self.row("idle", uuid, "accelerator_energy_joules_total vs pynvml", None, e1, "", "SKIP", "pynvml not importable")

    def check_sanity(self, phase, m):
        problems = []
        ratio_names = ("_ratio",)
        for name, labels, v in m.samples:
            where = f"{name}{json.dumps(labels, sort_keys=True)}"
            if math.isnan(v):
                problems.append(f"NaN: {where}")
                continue
            if math.isinf(v):
                problems.append(f"Inf: {where}")
                continue
            if abs(v) >= SENTINEL_LIMIT:
                problems.append(f"sentinel-sized {v}: {where}")
            if name.startswith("accelerator") and v in (4294967295.0, 65535.0 * 1e6, 18446744073709551615.0):
                problems.append(f"sentinel-like {v}: {where}")
            if (name.endswith("_total") or name.endswith("_count") or name.endswith("_bucket")) and v < 0:
                problems.append(f"negative counter {v}: {where}")
            if name.startswith("accelerator") and name.endswith(ratio_names) and not 0 <= v <= 1:
                problems.append(f"ratio outside [0,1] {v}: {where}")
            if name == "accelerator_temperature_celsius" and not -40 < v < 150:
                problems.append(f"implausible temperature {v}: {where}")
            if name in ("accelerator_power_watts", "accelerator_power_limit_watts") and not 0 <= v < 5000:
                problems.append(f"implausible power {v}: {where}")
            if name == "accelerator_clock_hertz" and not 0 <= v < 1e10:
                problems.append(f"implausible clock {v}: {where}")
            if name == "accelerator_performance_state" and not (0 <= v <= 15 and v == int(v)):
                problems.append(f"implausible pstate {v}: {where}")
            if name in ("accelerator_up", "accelerator_throttle_active") and v not in (0.0, 1.0):
                problems.append(f"not 0/1 {v}: {where}")
        self.row(phase, "", "no NaN/Inf/sentinel/negative-counter/out-of-range values", 0, len(problems),
                 TOLERANCES["sanity"], "PASS" if not problems else "FAIL", "; ".join(problems[:8]))
        dups = m.duplicates()
        self.row(phase, "", "no duplicate series", 0, len(dups), "exact", "PASS" if not dups else "FAIL",
                 "; ".join(f"{n}{dict(l)}" for n, l in dups[:5]))
        self.row(phase, "", "series in one scrape", None, len(m.samples), "", "INFO", f"{len(m.text)} bytes")

    def check_latency(self):
        times = []
        sizes = set()
        for _ in range(self.args.scrapes):
            status, body, _, elapsed = http_get(self.base + "/metrics", timeout=10)
            if status != 200:
                raise RuntimeError(f"/metrics answered {status}")
            times.append(elapsed)
            sizes.add(len(body))
        times.sort()
        p50 = statistics.median(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        self.info["scrape_latency_ms"] = {"p50": p50 * 1e3, "p90": p90 * 1e3, "max": times[-1] * 1e3, "n": len(times)}
        self.row("idle", "", f"/metrics latency p50 of {len(times)} sequential scrapes", None, f"{p50 * 1e3:.2f} ms",
                 "< 100 ms", "PASS" if p50 < 0.1 else "FAIL", f"p90 {p90 * 1e3:.2f} ms, max {times[-1] * 1e3:.2f} ms")

    def check_openmetrics(self):
        status, body, hdrs, _ = http_get(self.base + "/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            "Accept-Encoding": "gzip"})
        text = body.decode("utf-8", "replace")
        ok = status == 200 and "openmetrics" in hdrs.get("Content-Type", "") and text.rstrip().endswith("# EOF")
        self.row("idle", "", "OpenMetrics negotiation (+gzip)", None, hdrs.get("Content-Type"), "# EOF terminated",
                 "PASS" if ok else "FAIL", f"status {status}, encoding {hdrs.get('Content-Encoding', 'identity')}")

    # -- load --------------------------------------------------------------------------------------------------------
    def load_phase(self, gpus):
        if importlib.util.find_spec("torch") is None and importlib.util.find_spec("cupy") is None:
            self.row("load", "", "load phase", None, None, "", "SKIP",
                     "neither torch nor cupy is importable: no matmul load, so the load checks (GPM tensor activity "
                     "included) and the PCIe unit check did not run; pip install torch on the GPU machine to run them")
            return
        try:
            self.matmul_load(gpus)
        finally:
            # After the matmuls: GPM's PCIe unit against a timed copy (GPU 0 only).
            self.guarded("pcie", "", "pcie unit", self.check_pcie_unit, gpus)

    def matmul_load(self, gpus):
        n = len(gpus)
        procs = []
        errs = []
        for i in range(n):
            cmd = [sys.executable, os.path.abspath(__file__), "--load-worker", "--device", str(i),
                   "--seconds", str(self.args.load_seconds), "--alloc-gib", str(self.args.alloc_gib)]
            err = tempfile.TemporaryFile(mode="w+")
            errs.append(err)
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True))
        try:
            ready = []
            t_end = time.monotonic() + self.args.load_start_timeout
            for i, p in enumerate(procs):
                line = ""
                while True:
                    left = t_end - time.monotonic()
                    if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
                        line = line or "(no READY before the start timeout)"
                        break
                    line = p.stdout.readline()
                    if not line or line.startswith("READY") or line.startswith("NOCUDA"):
                        break
                ready.append(line.strip() or f"(exited {p.poll()})")
            if all(r.startswith("NOCUDA") for r in ready):
                self.row("load", "", "load phase", None, None, "", "SKIP", "torch has no CUDA: " + ready[0])
                return
            for i, r in enumerate(ready):
                if not r.startswith("READY"):
                    errs[i].seek(0)
                    tail = errs[i].read()[-400:].strip().replace("\n", " / ")
                    self.row("load", "", f"load generator on cuda:{i}", None, None, "", "FAIL", f"not ready: {r!r} {tail}")
            if not any(r.startswith("READY") for r in ready):
                return
            self.row("load", "", "load generators", None, "; ".join(ready), "", "INFO")
            time.sleep(8)
            reads = []
            for k in range(3):
                if k:
                    time.sleep(2)
                reads.append(fetch_metrics(self.base))
            self.save("metrics-load.prom", reads[-1].text)
            # nvidia-smi under load, bracketed like the idle comparison.
            before, smi_gpus, after = self.bracket()
            for g in smi_gpus:
                self.guarded("load", g["uuid"], "readings under load", self.check_load_readings, [before, after], g)
            for g in gpus:
                self.guarded("load", g["uuid"], "load assertions", self.check_load_assertions, reads, g)
                self.guarded("load", g["uuid"], "tensor activity under load", self.check_tensor_rises, reads, g)
            self.guarded("load", "", "gpm", self.check_gpm, "load", gpus)
            self.guarded("load", "", "sanity", self.check_sanity, "load", reads[-1])
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
            for e in errs:
                e.close()

    def check_load_readings(self, ms, g):
        uuid = g["uuid"]
        def n(field, scale=1.0):
            raw = g.get(field)
            v = smi_num(raw)
            return raw, (v * scale if v is not None else None)
        raw, e = n("utilization.gpu", 0.01)
        self.compare("load", uuid, "accelerator_utilization_ratio", raw, e, self.vals(ms, "accelerator_utilization_ratio", uuid),
                     lambda e, a: abs(a - e) <= 0.15, TOLERANCES["utilization"])
        raw, e = n("power.draw")
        self.compare("load", uuid, "accelerator_power_watts", raw, e, self.vals(ms, "accelerator_power_watts", uuid),
                     lambda e, a: abs(a - e) <= max(0.15 * e, 20), TOLERANCES["power draw"])
        raw, e = n("clocks.sm", 1e6)
        self.compare("load", uuid, 'accelerator_clock_hertz{clock="sm"}', raw, e,
                     self.vals(ms, "accelerator_clock_hertz", uuid, clock="sm"),
                     lambda e, a: abs(a - e) <= max(0.10 * e, 30e6), TOLERANCES["clocks"])
        raw, e = n("memory.used", MIB)
        self.compare("load", uuid, 'accelerator_memory_used_bytes{memory="vram"}', raw, e,
                     self.vals(ms, "accelerator_memory_used_bytes", uuid, memory="vram"),
                     lambda e, a: abs(a - e) <= 64 * MIB, TOLERANCES["memory used"])
        raw, e = n("temperature.gpu")
        self.compare("load", uuid, 'accelerator_temperature_celsius{sensor="gpu"}', raw, e,
                     self.vals(ms, "accelerator_temperature_celsius", uuid, sensor="gpu"),
                     lambda e, a: abs(a - e) <= 3, TOLERANCES["temperature"])

    def check_load_assertions(self, reads, g):
        uuid = g["uuid"]
        idle = self.idle.get(uuid, {})
        util = [m.one("accelerator_utilization_ratio", accelerator=uuid) for m in reads]
        power = [m.one("accelerator_power_watts", accelerator=uuid) for m in reads]
        sm = [m.one("accelerator_clock_hertz", accelerator=uuid, clock="sm") for m in reads]
        energy = [m.one("accelerator_energy_joules_total", accelerator=uuid) for m in reads]
        mem = [m.one("accelerator_memory_used_bytes", accelerator=uuid, memory="vram") for m in reads]

        def med(xs):
            xs = [x for x in xs if x is not None]
            return statistics.median(xs) if xs else None

        u = med(util)
        self.row("load", uuid, "utilization rises above 0.5", idle.get("util"), u, "median > 0.5",
                 "PASS" if u is not None and u > 0.5 else "FAIL", f"reads {[fmt(x) for x in util]}")
        p = med(power)
        ip = idle.get("power")
        ok = p is not None and ip is not None and p >= 1.2 * ip
        self.row("load", uuid, "power rises ≥ 20 % over idle", ip, p, "median ≥ 1.2 × idle",
                 "PASS" if ok else "FAIL", f"reads {[fmt(x) for x in power]}" + (f", ×{p / ip:.2f}" if p and ip else ""))
        self.row("load", uuid, "SM clock > 0", None, med(sm), "all > 0",
                 "PASS" if all(x is not None and x > 0 for x in sm) else "FAIL", f"reads {[fmt(x) for x in sm]}")
        inc = all(x is not None for x in energy) and all(b > a for a, b in zip(energy, energy[1:]))
        if idle.get("energy") is not None and energy[0] is not None:
            inc = inc and energy[0] > idle["energy"]
        self.row("load", uuid, "energy keeps increasing", idle.get("energy"), energy[-1], "strictly increasing",
                 "PASS" if inc else "FAIL", f"reads {[fmt(x) for x in energy]}")
        if all(x is not None for x in energy) and reads[-1].fetched_at > reads[0].fetched_at:
            rate = (energy[-1] - energy[0]) / (reads[-1].fetched_at - reads[0].fetched_at)
            self.row("load", uuid, "energy rate vs power", p, f"{rate:.0f} W", "", "INFO", "ΔE/Δt over the three reads (tick-aligned, rough)")
        im = idle.get("mem_used")
        mm = med(mem)
        gib = self.args.alloc_gib
        ok = mm is not None and im is not None and mm >= im + gib * 0.5 * 2**30
        self.row("load", uuid, f"memory used rises (load allocates {gib} GiB)", im, mm, f"≥ idle + {gib / 2:g} GiB",
                 "PASS" if ok else "FAIL")
        # Per-process / per-pod series, where the exporter has any.
        proc_series = [(name, l, v) for m in reads[-1:] for name, l, v in m.samples
                       if l.get("accelerator") == uuid and ("process" in name or "_pod_" in name)]
        if not proc_series:
            self.row("load", uuid, "per-process series see the load", None, None, "", "SKIP", "no per-process series exported")
        else:
            pos = [s for s in proc_series if s[2] > 0]
            self.row("load", uuid, "per-process series see the load", None, len(pos), "some > 0",
                     "PASS" if pos else "FAIL", "; ".join(f"{n}={fmt(v)}" for n, _, v in proc_series[:5]))

    def check_gpm(self, phase, gpus):
        """GPM families where pynvml says the GPU has GPM (none elsewhere), against pynvml's own GPM reading of the
        second just before the exporter is read: both are averages over about one second."""
        if not self.nvml.ok:
            self.row(phase, "", "GPM vs pynvml", None, None, "", "SKIP", f"pynvml unavailable: {self.nvml.error}")
            return
        supported = {}
        for g in gpus:
            uuid = g["uuid"]
            ok, err = self.nvml.gpm_supported(self.nvml.handle(uuid))
            supported[uuid] = ok
            self.gpm[uuid] = bool(ok)
        handles = [self.nvml.handle(g["uuid"]) for g in gpus if supported[g["uuid"]]]
        refs = self.nvml.gpm_window(handles, 1.2) if handles else []
        m = fetch_metrics(self.base)
        self.save(f"metrics-gpm-{phase}.prom", m.text)
        refs = iter(refs)
        for g in gpus:
            uuid = g["uuid"]
            sm = m.find("accelerator_sm_active_ratio", accelerator=uuid)
            if supported[uuid] is None:
                self.row(phase, uuid, "GPM support", None, bool(sm), TOLERANCES["gpm support"], "SKIP",
                         "pynvml has no nvmlGpmQueryDeviceSupport (nvidia-ml-py older than 12.535?)")
                continue
            if not supported[uuid]:
                self.row(phase, uuid, "GPM support (pynvml: unsupported)", False, bool(sm), TOLERANCES["gpm support"],
                         "ABSENT-OK" if not sm else "FAIL", "" if not sm else "the exporter exports GPM values pynvml cannot read")
                continue
            ref = next(refs)
            self.row(phase, uuid, "GPM support (pynvml: supported)", True, bool(sm), TOLERANCES["gpm support"],
                     "PASS" if sm else "FAIL", "" if sm else "accelerator_sm_active_ratio absent")
            tol = 0.05 if phase == "idle" else 0.10
            for key in ("sm", "tensor", "occupancy", "graphics", "dram"):
                _, series, labels = GPM_REFERENCE[key]
                shown = series + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
                value, _ = ref[key]
                expected = value / 100 if value is not None else None
                found = m.find(series, accelerator=uuid, **labels)
                actual = found[0][1] if found else None
                if expected is None:
                    self.row(phase, uuid, f"{shown} (GPM {key})", None, actual, "absent", "ABSENT-OK" if actual is None else "INFO",
                             "pynvml's GPM has no value for it")
                    continue
                if key in ("sm", "tensor"):
                    self.gpm.setdefault(f"{phase}:{uuid}", {})[key] = actual
                ok = actual is not None and abs(actual - expected) <= tol
                self.row(phase, uuid, f"{shown} (GPM {key})", expected, actual, TOLERANCES[f"gpm {phase}"],
                         "PASS" if ok else ("FAIL" if key in ("sm", "tensor") else "INFO"),
                         "pynvml's GPM reading (percent / 100)" + ("" if actual is not None else ": absent from the exporter"))
            for key in ("pcie_tx", "pcie_rx"):
                value, unit = ref[key]
                _, series, labels = GPM_REFERENCE[key]
                found = m.find(series, accelerator=uuid, **labels)
                self.row(phase, uuid, f"GPM {key} as NVML reports it", value, found[0][1] if found else None, "", "INFO",
                         f"NVML's unit string: {unit!r}; the exporter's value is bytes/s (× 2^20 per MiB/s, UNVERIFIED until the pcie unit row passes)")

    def check_tensor_rises(self, reads, g):
        uuid = g["uuid"]
        if not self.gpm.get(uuid):
            self.row("load", uuid, "tensor activity rises well above idle", None, None, "", "SKIP", "no GPM on this GPU")
            return
        idle = self.gpm.get(f"idle:{uuid}", {}).get("tensor")
        values = [m.one("accelerator_pipe_active_ratio", accelerator=uuid, pipe="tensor") for m in reads]
        present = [v for v in values if v is not None]
        med = statistics.median(present) if present else None
        want = max(0.30, (idle or 0) + 0.20)
        ok = med is not None and med >= want
        self.row("load", uuid, "tensor activity rises well above idle", idle, med, TOLERANCES["tensor under load"],
                 "PASS" if ok else "FAIL", f"reads {[fmt(v) for v in values]}, want ≥ {want:.2f}")

    def check_pcie_unit(self, gpus):
        """A host-to-device copy of known size on GPU 0: GPM's PCIe rx (or, without GPM, nvmlDeviceGetPcieThroughput's)
        must match the copy's own rate, which settles the *_PER_SEC unit the reference leaves UNVERIFIED."""
        if importlib.util.find_spec("torch") is None:
            self.row("pcie", "", "PCIe rate unit", None, None, "", "SKIP", "torch not importable: no timed copy")
            return
        uuid = gpus[0]["uuid"]
        cmd = [sys.executable, os.path.abspath(__file__), "--load-worker", "--copy", "--device", "0", "--seconds", "10"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().strip() if select.select([p.stdout], [], [], 60)[0] else "(no READY within 60 s)"
            if not line.startswith("READY"):
                self.row("pcie", uuid, "PCIe rate unit", None, None, "", "SKIP" if line.startswith("NOCUDA") else "FAIL", line)
                return
            time.sleep(3)
            reads = []
            for k in range(3):
                if k:
                    time.sleep(1.5)
                reads.append(fetch_metrics(self.base))
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
        rate = next((float(l.split()[1]) for l in out.splitlines() if l.startswith("RATE")), None)
        rx = [m.one("accelerator_pcie_bandwidth_bytes_per_second", accelerator=uuid, direction="rx") for m in reads]
        tx = [m.one("accelerator_pcie_bandwidth_bytes_per_second", accelerator=uuid, direction="tx") for m in reads]
        present = [v for v in rx if v is not None]
        med = statistics.median(present) if present else None
        source = "GPM PCIE_RX_PER_SEC × 2^20" if self.gpm.get(uuid) else "nvmlDeviceGetPcieThroughput RX × 1024"
        ok = rate and med is not None and 0.7 * rate <= med <= 1.4 * rate
        self.row("pcie", uuid, "PCIe rx during a host-to-device copy", rate, med, TOLERANCES["pcie unit"],
                 "PASS" if ok else "FAIL",
                 f"{source}; ratio {med / rate:.3f}" if rate and med else f"{source}; copy rate {rate}, reads {rx}")
        self.row("pcie", uuid, "PCIe tx during the same copy", None, statistics.median([v for v in tx if v is not None] or [0]),
                 "", "INFO", "should be far below rx (the copy only sends to the GPU)")

    def check_rss(self, pid):
        status = open(f"/proc/{pid}/status").read()
        fields = dict(re.findall(r"^(Vm\w+):\s+(\d+ kB)", status, re.M))
        self.info["exporter_memory"] = {k: fields.get(k) for k in ("VmRSS", "VmHWM", "VmSize")}
        self.row("end", "", "exporter VmRSS / VmHWM", None, f"{fields.get('VmRSS')} / {fields.get('VmHWM')}", "", "INFO")

    # -- output ------------------------------------------------------------------------------------------------------
    def save(self, name, text):
        if self.out:
            os.makedirs(self.out, exist_ok=True)
            with open(os.path.join(self.out, name), "w") as f:
                f.write(text)

    def summary(self):
        counts = {}
        for r in self.rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts

    def write(self):
        summary = self.summary()
        result = {"info": self.info, "tolerances": TOLERANCES, "summary": summary, "rows": self.rows,
                  "verdict": "FAIL" if summary.get("FAIL") else "PASS"}
        if self.out:
            os.makedirs(self.out, exist_ok=True)
            with open(os.path.join(self.out, "device-check.json"), "w") as f:
                json.dump(result, f, indent=2, ensure_ascii=False)
            with open(os.path.join(self.out, "report.md"), "w") as f:
                f.write(self.markdown(summary))
        return result

    def markdown(self, summary):
        def cell(s):
            return str(s).replace("|", "\\|").replace("\n", " ")
        lines = [f"## Checks: {'FAIL' if summary.get('FAIL') else 'PASS'} — "
                 + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())), ""]
        if self.info.get("gpus"):
            lines += ["| # | UUID | name | PCI bus id |", "|---|---|---|---|"]
            lines += [f"| {g['index']} | {g['uuid']} | {g['name']} | {g['pci_bus_id']} |" for g in self.info["gpus"]]
            lines.append("")
        lines.append(f"pynvml: {self.info.get('pynvml')}")
        if self.info.get("nvidia_smi_unknown_fields"):
            lines.append(f"nvidia-smi does not know: {', '.join(self.info['nvidia_smi_unknown_fields'])}")
        lines += ["", "| phase | GPU | check | nvidia-smi | exporter | tolerance | result | note |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            status = f"**{r['status']}**" if r["status"] == "FAIL" else r["status"]
            lines.append("| " + " | ".join(cell(x) for x in (r["phase"], self.gpu_index.get(r["gpu"], r["gpu"]), r["check"],
                                                             r["nvidia_smi"], r["exporter"], r["tolerance"], status, r["note"])) + " |")
        lines += ["", "### Tolerances", "", "| what | tolerance |", "|---|---|"]
        lines += [f"| {k} | {cell(v)} |" for k, v in TOLERANCES.items()]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# Load worker: big bf16 matmuls on one GPU, synchronizing every iteration, until --seconds pass or SIGTERM.

def load_worker(device, seconds, alloc_gib, copy=False):
    try:
        import torch
    except Exception as e:
        if copy:
            print(f"NOCUDA torch import failed: {e}", flush=True)
            return 3
        return cupy_load_worker(device, seconds, alloc_gib, f"torch import failed: {e}")
    if copy:
        return copy_worker(torch, device, seconds)
    if not torch.cuda.is_available() or device >= torch.cuda.device_count():
        print(f"NOCUDA torch {torch.__version__} sees {torch.cuda.device_count() if torch.cuda.is_available() else 0} GPUs", flush=True)
        return 3
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    dev = torch.device("cuda", device)
    torch.cuda.set_device(dev)
    hold = torch.ones(int(alloc_gib * 2**30), dtype=torch.uint8, device=dev) if alloc_gib > 0 else None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    a = torch.randn(8192, 8192, dtype=dtype, device=dev)
    b = torch.randn(8192, 8192, dtype=dtype, device=dev)
    for _ in range(3):
        c = a @ b
    torch.cuda.synchronize()
    print(f"READY cuda:{device} {torch.cuda.get_device_name(dev)} {dtype} torch {torch.__version__}", flush=True)
    t_end = time.monotonic() + seconds
    iters = 0
    while time.monotonic() < t_end and not stop[0]:
        c = a @ b
        torch.cuda.synchronize()
        iters += 1
    del hold, c
    print(f"DONE {iters} matmuls", flush=True)
    return 0


def cupy_load_worker(device, seconds, alloc_gib, why):
    """The matmul load without torch: fp16 (tensor-core HMMA, as bf16 is) through cupy, when importable."""
    try:
        import cupy
    except Exception as e:
        print(f"NOCUDA {why}; cupy import failed: {e}", flush=True)
        return 3
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    with cupy.cuda.Device(device):
        hold = cupy.ones(int(alloc_gib * 2**30), dtype=cupy.uint8) if alloc_gib > 0 else None
        a = cupy.random.standard_normal((8192, 8192), dtype=cupy.float32).astype(cupy.float16)
        b = cupy.random.standard_normal((8192, 8192), dtype=cupy.float32).astype(cupy.float16)
        c = a @ b
        cupy.cuda.Device(device).synchronize()
        print(f"READY cuda:{device} cupy {cupy.__version__} float16", flush=True)
        t_end = time.monotonic() + seconds
        iters = 0
        while time.monotonic() < t_end and not stop[0]:
            c = a @ b
            cupy.cuda.Device(device).synchronize()
            iters += 1
        del hold, c
    print(f"DONE {iters} matmuls", flush=True)
    return 0


def copy_worker(torch, device, seconds):
    """Host-to-device copies of a pinned 256 MiB buffer for `seconds`; prints READY, then RATE <bytes/s>."""
    if not torch.cuda.is_available() or device >= torch.cuda.device_count():
        print("NOCUDA torch sees no such GPU", flush=True)
        return 3
    dev = torch.device("cuda", device)
    host = torch.empty(256 * MIB, dtype=torch.uint8).pin_memory()
    target = torch.empty(256 * MIB, dtype=torch.uint8, device=dev)
    target.copy_(host, non_blocking=True)
    torch.cuda.synchronize(dev)
    print(f"READY copy to cuda:{device}", flush=True)
    start = time.monotonic()
    copied = 0
    while time.monotonic() - start < seconds:
        target.copy_(host, non_blocking=True)
        torch.cuda.synchronize(dev)
        copied += 256 * MIB
    print(f"RATE {copied / (time.monotonic() - start):.0f}", flush=True)
    return 0


# --------------------------------------------------------------------------------------------------------------------

def self_test():
    text = r'''# HELP accelerator_info Static facts
# TYPE accelerator_info gauge
accelerator_info{accelerator="GPU-1",model="a \"quoted\" name",path="C:\\x",multi="l1\nl2",} 1
accelerator_up{accelerator="GPU-1"} 1
plain 3.5 1700000000000
  spaced { a = "1" , b="2" } -Inf
nan_metric NaN
x_total{a="b,c}"} +Inf
'''
    ms = Metrics(text)
    assert ms.one("accelerator_info", accelerator="GPU-1") == 1
    l, _ = ms.find("accelerator_info")[0]
    assert l["model"] == 'a "quoted" name', l
    assert l["path"] == "C:\\x", l
    assert l["multi"] == "l1\nl2", l
    assert ms.one("plain") == 3.5
    assert ms.one("spaced", a="1", b="2") == float("-inf")
    assert math.isnan(ms.one("nan_metric"))
    assert ms.one("x_total", a="b,c}") == float("inf")
    assert ms.one("missing") is None
    for bad in ('m{a="1} 1', "m{a=1} 1", "m", 'm{a="1",a="2"} 1', "m x", "9m 1"):
        try:
            parse_prometheus_text(bad)
        except ParseError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    dup = Metrics('a{x="1"} 1\na{x="1"} 2\n')
    assert len(dup.duplicates()) == 1
    assert smi_num("[N/A]") is None and smi_num("[Not Supported]") is None and smi_num("45.12") == 45.12
    print("self-test: ok")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/device-check"))
    ap.add_argument("--exporter-pid", type=int)
    ap.add_argument("--nvidia-smi", default="nvidia-smi")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--load-seconds", type=float, default=25)
    ap.add_argument("--alloc-gib", type=float, default=4)
    ap.add_argument("--load-start-timeout", type=float, default=90, help="seconds to wait for the load generators' READY")
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--deadline", type=float, default=230, help="seconds after which remaining checks are skipped")
    ap.add_argument("--wait-ready", type=float, metavar="SECONDS")
    ap.add_argument("--fetch", metavar="PATH")
    ap.add_argument("--to", metavar="FILE")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--load-worker", action="store_true")
    ap.add_argument("--copy", action="store_true", help="with --load-worker: timed host-to-device copies, not matmuls")
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=25)
    args = ap.parse_args()
    base = args.url.rstrip("/")

    if args.self_test:
        return self_test()
    if args.load_worker:
        return load_worker(args.device, args.seconds, args.alloc_gib, copy=args.copy)
    if args.wait_ready is not None:
        t_end = time.monotonic() + args.wait_ready
        last = ""
        while time.monotonic() < t_end:
            try:
                status, body, _, _ = http_get(base + "/readyz", timeout=2)
                if status == 200:
                    print(f"ready after {args.wait_ready - (t_end - time.monotonic()):.1f}s")
                    return 0
                last = f"{status} {body[:100]!r}"
            except Exception as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.25)
        print(f"not ready after {args.wait_ready}s: {last}")
        return 1
    if args.fetch:
        try:
            status, body, _, _ = http_get(base + args.fetch, timeout=10)
        except Exception as e:
            print(f"GET {args.fetch}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        with open(args.to, "wb") if args.to else sys.stdout.buffer as f:
            f.write(body)
        return 0 if status == 200 else 1

    checker = Checker(args)

    def on_term(signum, _frame):
        raise Deadline()
    signal.signal(signal.SIGTERM, on_term)

    try:
        checker.run()
    except Deadline:
        checker.row("end", "", "check run", None, None, "", "FAIL", "stopped early (deadline or SIGTERM): remaining checks not run")
    except Exception as e:
        checker.row("end", "", "check run", None, None, "", "FAIL", f"crashed: {type(e).__name__}: {e}")
        traceback.print_exc()
    result = checker.write()
    print(f"\nsummary: {result['summary']} → {result['verdict']}")
    return 1 if result["verdict"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
