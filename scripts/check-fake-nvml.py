#!/usr/bin/env python3
"""Checks the fake NVML (Sources/FakeNVML) against NVIDIA's own Python binding.

    python3 scripts/check-fake-nvml.py PATH/TO/libFakeNVML.so Tests/Fixtures/nvml [--old PATH/TO/libFakeNVMLOld.so]

pynvml (PyPI nvidia-ml-py: `pip install nvidia-ml-py`) loads the fake as libnvidia-ml.so.1 through its normal
loader (a temporary directory with that symlink on LD_LIBRARY_PATH) and must read back what each description
says: identity, readings, field values, processes, MIG devices, NVLink state and throughput counters, GPM samples
and metrics (the GPU's and each MIG slice's), `fail` lines and absent keys as NVML errors. Then
scenarios edit a temporary copy of a description while the library runs (XID events, a GPU falling off the bus,
`vary 1`), check that no description means "driver not loaded", and probe the C interface directly with ctypes
(per-entry field returns, process-utilization lastSeen, buffer sizes, NULL pointers, GPM sample order, struct
sizes against pynvml's). With --old, the old-driver
build is checked for its smaller, older set of entry points.

Every scenario runs in a child process of its own (NVML state is per process). Exit status 0 only if all pass.
"""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

NO_INSTANCE = 0xFFFFFFFF
CODES = {
    "SUCCESS": 0, "UNINITIALIZED": 1, "INVALID_ARGUMENT": 2, "NOT_SUPPORTED": 3, "NO_PERMISSION": 4,
    "ALREADY_INITIALIZED": 5, "NOT_FOUND": 6, "INSUFFICIENT_SIZE": 7, "INSUFFICIENT_POWER": 8,
    "DRIVER_NOT_LOADED": 9, "TIMEOUT": 10, "IRQ_ISSUE": 11, "LIBRARY_NOT_FOUND": 12, "FUNCTION_NOT_FOUND": 13,
    "CORRUPTED_INFOROM": 14, "GPU_IS_LOST": 15, "RESET_REQUIRED": 16, "OPERATING_SYSTEM": 17,
    "LIB_RM_VERSION_MISMATCH": 18, "IN_USE": 19, "MEMORY": 20, "NO_DATA": 21, "VGPU_ECC_NOT_SUPPORTED": 22,
    "INSUFFICIENT_RESOURCES": 23, "FREQ_NOT_SUPPORTED": 24, "ARGUMENT_VERSION_MISMATCH": 25, "DEPRECATED": 26,
    "NOT_READY": 27, "GPU_NOT_FOUND": 28, "INVALID_STATE": 29, "RESET_TYPE_NOT_SUPPORTED": 30, "UNKNOWN": 999,
}
OK, NOT_SUPPORTED, INVALID_ARGUMENT, NOT_FOUND, INSUFFICIENT_SIZE = 0, 3, 2, 6, 7
NVLINK_MAX_LINKS = 36
# GPM metric ids whose values are rates (MiB/s in the header), not percentages.
GPM_PER_SEC = set(range(20, 22)) | set(range(60, 98)) | set(range(212, 248))
# The GPM ids the exporter asks for (its NVMLSource.GPM tables); each description's own ids are asked too.
GPM_ASKED = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21]


# ------------------------------------------------------------------------------------------------------------------
# The description format, parsed independently of the C parser.

def parse_description(path):
    machine = {"driver": None, "cuda": None, "vary": 0, "init_fail": 0, "gpus": []}
    gpu = mig = None
    for number, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw.rstrip("\n")).strip()
        if not line:
            continue
        tok = line.split()
        key, rest = tok[0], line[len(tok[0]):].strip()
        num = lambda s: int(s, 0)
        if key == "device":
            gpu = {"has": {}, "procs": [], "putil": [], "fails": [], "xids": [], "migs": [], "gpm": {}, "nvlinks": {}}
            mig = None
            machine["gpus"].append(gpu)
        elif key == "mig":
            mig = {"has": {}, "procs": [], "putil": [], "fails": [], "gpm": {}}
            gpu["migs"].append(mig)
        elif gpu is None:
            if key == "driver_version": machine["driver"] = tok[1]
            elif key == "cuda_version": machine["cuda"] = num(tok[1])
            elif key == "vary": machine["vary"] = num(tok[1])
            elif key == "init_fail": machine["init_fail"] = CODES.get(tok[1]) or num(tok[1])
            else: raise ValueError(f"{path}:{number}: unknown global key {key}")
        else:
            block = mig if mig is not None else gpu
            if key == "process":
                block["procs"].append((num(tok[1]), num(tok[2]), len(tok) > 3 and tok[3] == "mps"))
            elif key == "process_util":
                block["putil"].append(tuple(num(t) for t in tok[1:6]))
            elif key == "fail":
                block["fails"].append((tok[1], CODES[tok[2]] if tok[2] in CODES else num(tok[2])))
            elif key == "xid":
                gi, ci = (num(tok[2]), num(tok[3])) if len(tok) == 4 else (NO_INSTANCE, NO_INSTANCE)
                block["xids"].append((num(tok[1]), gi, ci))
            elif key == "gpm":
                block["gpm"][num(tok[1])] = float(tok[2])
            elif key == "gpm_nvlink":
                block["has"][key] = [float(tok[1]), float(tok[2])]
            elif key == "nvlinks":
                for link in range(num(tok[1])):
                    block["nvlinks"][link] = [1, num(tok[2]), num(tok[3])]
            elif key == "nvlink":
                old = block["nvlinks"].get(num(tok[1]), [0, 0, 0])
                block["nvlinks"][num(tok[1])] = [num(tok[2])] + ([num(tok[3]), num(tok[4])] if len(tok) == 5 else old[1:])
            elif key in ("name", "serial", "vbios"):
                block["has"][key] = rest
            elif key in ("uuid", "pci"):
                block["has"][key] = tok[1]
            else:
                block["has"][key] = [num(t) for t in tok[1:]]
    return machine


def base_name(symbol):
    return re.sub(r"_v\d+$", "", symbol)


def fail_code(gpu, mig, symbols):
    """The code a `fail` line forces for a call (0: none), mirroring the fake's precedence."""
    names = lambda fn: any(fn == s or fn == base_name(s) for s in symbols)
    for fn, code in gpu["fails"]:
        if fn == "*":
            return code
    if mig is not None:
        for fn, code in mig["fails"]:
            if fn == "*" or names(fn):
                return code
        return 0
    for fn, code in gpu["fails"]:
        if names(fn):
            return code
    return 0


def field_fail(block, field):
    for fn, code in block["fails"]:
        if fn == f"field:{field}":
            return code
    return None


def gpm_fail(block, metric):
    for fn, code in block["fails"]:
        if fn == f"gpm:{metric}":
            return code
    return None


def gpm_expected(gpu, mig, metric, k, vary):
    """(code, value) nvmlGpmMetricsGet should give for `metric` between two samples, the newer taken at k."""
    block = mig if mig is not None else gpu
    forced = gpm_fail(block, metric)
    if forced is not None:
        return forced, 0.0
    value = block["gpm"].get(metric)
    links = gpu["nvlinks"]
    if value is None and mig is None and "gpm_nvlink" in gpu["has"]:
        rx, tx = gpu["has"]["gpm_nvlink"]
        active = [l for l, (a, _, _) in links.items() if a]
        if 62 <= metric <= 97 or 212 <= metric <= 247:
            link = (metric - 62) // 2 if metric <= 97 else 18 + (metric - 212) // 2
            if link in active:
                value = tx if (metric - (62 if metric <= 97 else 212)) % 2 else rx
        elif metric in (60, 61):
            value = len(active) * (tx if metric == 61 else rx)
    if value is None:
        return NOT_SUPPORTED, 0.0
    if vary:
        if metric in GPM_PER_SEC:
            value *= 1.0 + (k % 10) / 10.0
        elif mig is None and "utilization" in gpu["has"]:
            value = value * ((gpu["has"]["utilization"][0] + 7 * k) % 101) / 100.0
    return 0, value


def gpm_metrics_get(sample1, sample2, ids):
    """nvmlGpmMetricsGet through pynvml's own structure: (call code, [(metricId, nvmlReturn, value, unit)])."""
    import pynvml
    get = pynvml.c_nvmlGpmMetricsGet_t()
    get.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    get.numMetrics = len(ids)
    get.sample1, get.sample2 = sample1, sample2
    for i, metric in enumerate(ids):
        get.metrics[i].metricId = metric
    code, _ = call(pynvml.nvmlGpmMetricsGet, get)
    return code, [(get.metrics[i].metricId, get.metrics[i].nvmlReturn, get.metrics[i].value,
                   get.metrics[i].metricInfo.unit) for i in range(len(ids))]


def gpm_live(lib):
    return ctypes.CDLL(lib).fakeNvmlGpmSamplesAllocated()


# ------------------------------------------------------------------------------------------------------------------
# Child side: pynvml against the fake.

class Failures:
    def __init__(self):
        self.errors = []
        self.checks = 0

    def check(self, condition, message):
        self.checks += 1
        if not condition:
            self.errors.append(message)
            print("  FAIL:", message, flush=True)


F = Failures()


def call(fn, *args):
    """(0, value) or (NVML code, None)."""
    import pynvml
    try:
        return 0, fn(*args)
    except pynvml.NVMLError as e:
        return e.value, None


def expect(label, symbols, thunk, gpu, mig, value=None, code=0):
    """Checks that thunk() gives `value` (or raises `code`), after `fail` lines."""
    forced = fail_code(gpu, mig, symbols if isinstance(symbols, (list, tuple)) else [symbols])
    want_code = forced or code
    got_code, got = call(thunk)
    if want_code:
        F.check(got_code == want_code, f"{label}: expected NVML error {want_code}, got {got_code} ({got!r})")
    else:
        F.check(got_code == 0 and got == value, f"{label}: expected {value!r}, got code {got_code} value {got!r}")
    return got


def assert_loaded_fake(lib):
    real = os.path.realpath(lib)
    maps = open("/proc/self/maps").read()
    F.check(real in maps, f"the loaded libnvidia-ml.so.1 is not {real}")


def vary_values(gpu, k):
    h = gpu["has"]
    v = {}
    if "utilization" in h:
        v["util"] = ((h["utilization"][0] + 7 * k) % 101, (h["utilization"][1] + 3 * k) % 101)
    if "memory" in h:
        v["used"] = min(h["memory"][1] + (k % 16) * 1048576, h["memory"][0])
    if "power" in h:
        p = h["power"][0] + (k % 50) * 1000
        if "power_limit" in h and p > h["power_limit"][0]:
            p = max(h["power"][0], h["power_limit"][0])
        v["power"] = p
    if "energy" in h:
        v["energy"] = h["energy"][0] + k * 100000
    if "temperature" in h:
        v["temp"] = h["temperature"][0] + k % 5
    if "memory_temperature" in h:
        v["memtemp"] = h["memory_temperature"][0] + k % 5
    if "clocks" in h:
        c = h["clocks"]
        drop = (k % 3) * 15
        v["clocks"] = [max(c[0] - drop, 0), max(c[1] - drop, 0), c[2], c[3]]
    return v


def describe(lib, path):
    """Every GPU (and MIG device) of a description, read back through pynvml."""
    import pynvml
    machine = parse_description(path)
    pynvml.nvmlInit()
    assert_loaded_fake(lib)
    F.check(pynvml.nvmlSystemGetDriverVersion() == machine["driver"], "driver version")
    F.check(pynvml.nvmlSystemGetCudaDriverVersion_v2() == machine["cuda"], "CUDA driver version")
    F.check(pynvml.nvmlDeviceGetCount() == len(machine["gpus"]), "device count")
    for i, gpu in enumerate(machine["gpus"]):
        h = gpu["has"]
        code, handle = call(pynvml.nvmlDeviceGetHandleByIndex, i)
        forced = next((c for fn, c in gpu["fails"] if fn in ("nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByIndex_v2")), 0)
        F.check(code == forced, f"gpu {i}: nvmlDeviceGetHandleByIndex returned {code}, expected {forced}")
        if code != 0:
            continue
        g = f"gpu {i}"
        mig_on = h.get("mig_mode", [0])[0] == 1
        k = 0  # nvmlDeviceGetUtilizationRates calls so far (only `vary 1` uses it)
        vary = machine["vary"] == 1

        def v():
            return vary_values(gpu, k if vary else 0)

        ns = lambda key: 0 if key in h else NOT_SUPPORTED
        # Utilization first: under `vary 1` it advances k, which the readings after it use.
        util_code = NOT_SUPPORTED if (mig_on or "utilization" not in h) else 0
        cur = v()
        got = expect(f"{g} utilization", "nvmlDeviceGetUtilizationRates",
                     lambda: (lambda u: (u.gpu, u.memory))(pynvml.nvmlDeviceGetUtilizationRates(handle)),
                     gpu, None, cur.get("util"), util_code)
        if fail_code(gpu, None, ["nvmlDeviceGetUtilizationRates"]) == 0:
            k += 1
        cur = v()
        expect(f"{g} name", "nvmlDeviceGetName", lambda: pynvml.nvmlDeviceGetName(handle), gpu, None, h.get("name"), ns("name"))
        expect(f"{g} uuid", "nvmlDeviceGetUUID", lambda: pynvml.nvmlDeviceGetUUID(handle), gpu, None, h.get("uuid"), ns("uuid"))
        expect(f"{g} serial", "nvmlDeviceGetSerial", lambda: pynvml.nvmlDeviceGetSerial(handle), gpu, None, h.get("serial"), ns("serial"))
        expect(f"{g} vbios", "nvmlDeviceGetVbiosVersion", lambda: pynvml.nvmlDeviceGetVbiosVersion(handle), gpu, None, h.get("vbios"), ns("vbios"))
        if "pci" in h:
            d, b, dv, fn = [int(x, 16) for x in re.split(r"[:.]", h["pci"])]
            want = (f"{d:08X}:{b:02X}:{dv:02X}.{fn:X}", f"{d & 0xffff:04X}:{b:02X}:{dv:02X}.{fn:X}", d, b, dv,
                    h.get("pci_device_id", [0])[0], h.get("pci_subsystem_id", [0])[0])
        else:
            want = None
        expect(f"{g} pci", "nvmlDeviceGetPciInfo_v3",
               lambda: (lambda p: (p.busId, p.busIdLegacy, p.domain, p.bus, p.device, p.pciDeviceId, p.pciSubSystemId))(
                   pynvml.nvmlDeviceGetPciInfo_v3(handle)), gpu, None, want, ns("pci"))
        if "memory" in h:
            total, used = h["memory"][0], cur["used"]
            reserved = min(h.get("memory_reserved", [0])[0], used)
            mem1, mem2 = (total, total - used, used), (total, reserved, total - used, used - reserved)
        else:
            mem1 = mem2 = None
        expect(f"{g} memory", "nvmlDeviceGetMemoryInfo",
               lambda: (lambda m: (m.total, m.free, m.used))(pynvml.nvmlDeviceGetMemoryInfo(handle)), gpu, None, mem1, ns("memory"))
        expect(f"{g} memory v2", "nvmlDeviceGetMemoryInfo_v2",
               lambda: (lambda m: (m.total, m.reserved, m.free, m.used))(
                   pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)), gpu, None, mem2, ns("memory"))
        expect(f"{g} temperature", "nvmlDeviceGetTemperature",
               lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU), gpu, None, cur.get("temp"), ns("temperature"))
        expect(f"{g} power", "nvmlDeviceGetPowerUsage", lambda: pynvml.nvmlDeviceGetPowerUsage(handle), gpu, None, cur.get("power"), ns("power"))
        expect(f"{g} power limit", "nvmlDeviceGetEnforcedPowerLimit", lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle),
               gpu, None, h.get("power_limit", [None])[0], ns("power_limit"))
        expect(f"{g} energy", "nvmlDeviceGetTotalEnergyConsumption", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle),
               gpu, None, cur.get("energy"), ns("energy"))
        for t in range(4):
            expect(f"{g} clock {t}", "nvmlDeviceGetClockInfo", lambda: pynvml.nvmlDeviceGetClockInfo(handle, t), gpu, None,
                   cur["clocks"][t] if "clocks" in h else None, ns("clocks"))
        for t in range(2):
            expect(f"{g} pcie throughput {t}", "nvmlDeviceGetPcieThroughput", lambda: pynvml.nvmlDeviceGetPcieThroughput(handle, t),
                   gpu, None, h["pcie_throughput"][t] if "pcie_throughput" in h else None, ns("pcie_throughput"))
        expect(f"{g} pcie gen", "nvmlDeviceGetCurrPcieLinkGeneration", lambda: pynvml.nvmlDeviceGetCurrPcieLinkGeneration(handle),
               gpu, None, h.get("pcie_link", [None])[0], ns("pcie_link"))
        expect(f"{g} pcie width", "nvmlDeviceGetCurrPcieLinkWidth", lambda: pynvml.nvmlDeviceGetCurrPcieLinkWidth(handle),
               gpu, None, h.get("pcie_link", [None, None])[1], ns("pcie_link"))
        expect(f"{g} fan", "nvmlDeviceGetFanSpeed", lambda: pynvml.nvmlDeviceGetFanSpeed(handle), gpu, None, h.get("fan", [None])[0], ns("fan"))
        expect(f"{g} pstate", "nvmlDeviceGetPerformanceState", lambda: pynvml.nvmlDeviceGetPerformanceState(handle),
               gpu, None, h.get("pstate", [None])[0], ns("pstate"))
        expect(f"{g} clocks event reasons", ["nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"],
               lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle), gpu, None, h.get("clocks_event_reasons", [None])[0],
               ns("clocks_event_reasons"))
        for kind, key in ((0, "ecc_volatile"), (1, "ecc_aggregate")):
            for err in range(2):
                expect(f"{g} ecc {key} {err}", "nvmlDeviceGetTotalEccErrors",
                       lambda: pynvml.nvmlDeviceGetTotalEccErrors(handle, err, kind), gpu, None,
                       h[key][err] if key in h else None, ns(key))

        # Field values: per-entry returns; the call itself succeeds.
        ULL, UINT = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
        r = lambda key, idx: h[key][idx] if key in h else None
        fields = {
            3: ("ecc_volatile", ULL, r("ecc_volatile", 0)), 4: ("ecc_volatile", ULL, r("ecc_volatile", 1)),
            5: ("ecc_aggregate", ULL, r("ecc_aggregate", 0)), 6: ("ecc_aggregate", ULL, r("ecc_aggregate", 1)),
            29: ("retired_pages", ULL, r("retired_pages", 0)), 30: ("retired_pages", ULL, r("retired_pages", 1)),
            31: ("retired_pages", UINT, r("retired_pages", 2)),
            82: ("memory_temperature", UINT, cur.get("memtemp")), 83: ("energy", ULL, cur.get("energy")),
            94: ("pcie_replay", ULL, r("pcie_replay", 0)),
            142: ("remapped_rows", ULL, r("remapped_rows", 0)), 143: ("remapped_rows", ULL, r("remapped_rows", 1)),
            144: ("remapped_rows", UINT, r("remapped_rows", 2)), 145: ("remapped_rows", UINT, r("remapped_rows", 3)),
            185: ("power", UINT, cur.get("power")), 186: ("power", UINT, cur.get("power")),
            1: (None, None, None), 251: (None, None, None),  # not described by any key: NOT_SUPPORTED
        }
        ids = list(fields)
        before = time.time() * 1e6
        code, values = call(pynvml.nvmlDeviceGetFieldValues, handle, ids)
        forced = fail_code(gpu, None, ["nvmlDeviceGetFieldValues"])
        F.check(code == forced, f"{g} field values: call returned {code}, expected {forced}")
        if code == 0:
            for n, fid in enumerate(ids):
                key, vtype, want = fields[fid]
                fv = values[n]
                want_code = field_fail(gpu, fid)
                if want_code is None:
                    want_code = 0 if key in h else NOT_SUPPORTED
                F.check(fv.nvmlReturn == want_code, f"{g} field {fid}: nvmlReturn {fv.nvmlReturn}, expected {want_code}")
                if want_code == 0:
                    got = fv.value.ullVal if vtype == ULL else fv.value.uiVal
                    F.check(fv.valueType == vtype and got == want,
                            f"{g} field {fid}: type {fv.valueType} value {got}, expected type {vtype} value {want}")
                    F.check(before - 1e6 < fv.timestamp < time.time() * 1e6 + 1e6, f"{g} field {fid}: timestamp {fv.timestamp}")

        # Running processes: the GPU's own, then those of its MIG devices (with their instance ids).
        for mps, fn, sym in ((False, pynvml.nvmlDeviceGetComputeRunningProcesses, "nvmlDeviceGetComputeRunningProcesses_v3"),
                             (True, pynvml.nvmlDeviceGetMPSComputeRunningProcesses, "nvmlDeviceGetMPSComputeRunningProcesses_v3")):
            want = [(p, m, NO_INSTANCE, NO_INSTANCE) for p, m, is_mps in gpu["procs"] if is_mps == mps]
            if mig_on:
                for mg in gpu["migs"]:
                    gi = mg["has"].get("gpu_instance", [NO_INSTANCE])[0]
                    ci = mg["has"].get("compute_instance", [NO_INSTANCE])[0]
                    want += [(p, m, gi, ci) for p, m, is_mps in mg["procs"] if is_mps == mps]
            expect(f"{g} processes (mps={mps})", sym,
                   lambda: [(p.pid, p.usedGpuMemory, p.gpuInstanceId, p.computeInstanceId) for p in fn(handle)],
                   gpu, None, want)

        # Process utilization: all samples since 0, then none newer than the newest stamp (NOT_FOUND).
        forced = fail_code(gpu, None, ["nvmlDeviceGetProcessUtilization"])
        code, samples = call(pynvml.nvmlDeviceGetProcessUtilization, handle, 0)
        if forced:
            F.check(code == forced, f"{g} process utilization: {code}, expected {forced}")
        elif not gpu["putil"]:
            F.check(code == NOT_FOUND, f"{g} process utilization without samples: {code}, expected NOT_FOUND")
        else:
            got = [(s.pid, s.smUtil, s.memUtil, s.encUtil, s.decUtil) for s in samples or []]
            F.check(code == 0 and got == gpu["putil"], f"{g} process utilization: {code} {got}, expected {gpu['putil']}")
            if code == 0 and not vary:
                newest = max(s.timeStamp for s in samples)
                code, _ = call(pynvml.nvmlDeviceGetProcessUtilization, handle, newest)
                F.check(code == NOT_FOUND, f"{g} process utilization after the newest stamp: {code}, expected NOT_FOUND")
                code, again = call(pynvml.nvmlDeviceGetProcessUtilization, handle, newest - 1)
                F.check(code == 0 and len(again) == len(gpu["putil"]), f"{g} process utilization just before the stamp: {code}")

        # MIG.
        expect(f"{g} mig mode", "nvmlDeviceGetMigMode", lambda: pynvml.nvmlDeviceGetMigMode(handle), gpu, None,
               [h["mig_mode"][0], h["mig_mode"][-1]] if "mig_mode" in h else None, ns("mig_mode"))
        expect(f"{g} max mig devices", "nvmlDeviceGetMaxMigDeviceCount", lambda: pynvml.nvmlDeviceGetMaxMigDeviceCount(handle),
               gpu, None, 7 if mig_on else 0)
        expect(f"{g} gpu instance id of a GPU", "nvmlDeviceGetGpuInstanceId", lambda: pynvml.nvmlDeviceGetGpuInstanceId(handle),
               gpu, None, code=INVALID_ARGUMENT)
        if mig_on:
            for index in range(7):
                if fail_code(gpu, None, ["nvmlDeviceGetMigDeviceHandleByIndex"]):
                    break
                code, mh = call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, index)
                if index >= len(gpu["migs"]):
                    F.check(code == NOT_FOUND, f"{g} MIG slot {index}: {code}, expected NOT_FOUND")
                    continue
                F.check(code == 0, f"{g} MIG slot {index}: {code}")
                if code:
                    continue
                mg = gpu["migs"][index]
                mhv = mg["has"]
                m = f"{g} MIG {index}"
                expect(f"{m} uuid", "nvmlDeviceGetUUID", lambda: pynvml.nvmlDeviceGetUUID(mh), gpu, mg, mhv.get("uuid"),
                       0 if "uuid" in mhv else NOT_SUPPORTED)
                expect(f"{m} name", "nvmlDeviceGetName", lambda: pynvml.nvmlDeviceGetName(mh), gpu, mg, mhv.get("name"),
                       0 if "name" in mhv else NOT_SUPPORTED)
                if "memory" in mhv:
                    t, u = mhv["memory"]
                    expect(f"{m} memory", "nvmlDeviceGetMemoryInfo",
                           lambda: (lambda x: (x.total, x.free, x.used))(pynvml.nvmlDeviceGetMemoryInfo(mh)), gpu, mg, (t, t - u, u))
                    expect(f"{m} memory v2", "nvmlDeviceGetMemoryInfo_v2",
                           lambda: (lambda x: (x.total, x.reserved, x.free, x.used))(
                               pynvml.nvmlDeviceGetMemoryInfo(mh, version=pynvml.nvmlMemory_v2)), gpu, mg, (t, 0, t - u, u))
                expect(f"{m} gpu instance", "nvmlDeviceGetGpuInstanceId", lambda: pynvml.nvmlDeviceGetGpuInstanceId(mh), gpu, mg,
                       mhv.get("gpu_instance", [None])[0], 0 if "gpu_instance" in mhv else NOT_SUPPORTED)
                expect(f"{m} compute instance", "nvmlDeviceGetComputeInstanceId", lambda: pynvml.nvmlDeviceGetComputeInstanceId(mh),
                       gpu, mg, mhv.get("compute_instance", [None])[0], 0 if "compute_instance" in mhv else NOT_SUPPORTED)
                expect(f"{m} parent", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
                       lambda: ctypes.cast(pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mh), ctypes.c_void_p).value,
                       gpu, mg, ctypes.cast(handle, ctypes.c_void_p).value)
                gi = mhv.get("gpu_instance", [NO_INSTANCE])[0]
                ci = mhv.get("compute_instance", [NO_INSTANCE])[0]
                expect(f"{m} processes", "nvmlDeviceGetComputeRunningProcesses_v3",
                       lambda: [(p.pid, p.usedGpuMemory, p.gpuInstanceId, p.computeInstanceId)
                                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(mh)],
                       gpu, mg, [(p, mm, gi, ci) for p, mm, is_mps in mg["procs"] if not is_mps])
                # No per-slice utilization, temperature, power, clocks or PCI.
                expect(f"{m} utilization", "nvmlDeviceGetUtilizationRates", lambda: pynvml.nvmlDeviceGetUtilizationRates(mh),
                       gpu, mg, code=NOT_SUPPORTED)
                expect(f"{m} temperature", "nvmlDeviceGetTemperature", lambda: pynvml.nvmlDeviceGetTemperature(mh, 0),
                       gpu, mg, code=NOT_SUPPORTED)
                expect(f"{m} power", "nvmlDeviceGetPowerUsage", lambda: pynvml.nvmlDeviceGetPowerUsage(mh), gpu, mg, code=NOT_SUPPORTED)
                expect(f"{m} clocks", "nvmlDeviceGetClockInfo", lambda: pynvml.nvmlDeviceGetClockInfo(mh, 1), gpu, mg, code=NOT_SUPPORTED)
                expect(f"{m} MIG handle of a MIG device", "nvmlDeviceGetMigDeviceHandleByIndex",
                       lambda: pynvml.nvmlDeviceGetMigDeviceHandleByIndex(mh, 0), gpu, mg, code=INVALID_ARGUMENT)
            code, _ = call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, 7)
            F.check(code == INVALID_ARGUMENT or fail_code(gpu, None, ["nvmlDeviceGetMigDeviceHandleByIndex"]),
                    f"{g} MIG index 7: {code}, expected INVALID_ARGUMENT")
        elif not fail_code(gpu, None, ["nvmlDeviceGetMigDeviceHandleByIndex"]):
            code, _ = call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, 0)
            F.check(code == INVALID_ARGUMENT, f"{g} MIG index 0 with MIG off: {code}, expected INVALID_ARGUMENT")

        check_nvlink(handle, gpu, g, k if vary else 0)
        k = check_gpm(lib, handle, gpu, g, k, vary)
    F.check(gpm_live(lib) == 0, f"GPM samples left allocated: {gpm_live(lib)}")
    pynvml.nvmlShutdown()


def check_nvlink(handle, gpu, g, k):
    """Link state for every link number, then the data/raw throughput counters per link and summed (scopeId
    UINT_MAX), and the NVLink error totals."""
    import pynvml
    links = gpu["nvlinks"]
    for link in range(NVLINK_MAX_LINKS):
        want_code = NOT_SUPPORTED if not links else (0 if link in links else INVALID_ARGUMENT)
        expect(f"{g} nvlink {link} state", "nvmlDeviceGetNvLinkState", lambda: pynvml.nvmlDeviceGetNvLinkState(handle, link),
               gpu, None, links[link][0] if link in links else None, want_code)
    if fail_code(gpu, None, ["nvmlDeviceGetFieldValues"]):
        return
    kib = lambda link, tx: links[link][1 if tx else 2] + k * 1024 * (link + 1)
    asks = [(fid, link) for link in list(links) + [NVLINK_MAX_LINKS - 1 if NVLINK_MAX_LINKS - 1 not in links else 0]
            for fid in (138, 139, 140, 141)] + [(138, 0xFFFFFFFF), (139, 0xFFFFFFFF), (38, 0), (45, 0), (52, 0), (59, 0)]
    code, values = call(pynvml.nvmlDeviceGetFieldValues, handle, asks)
    F.check(code == 0, f"{g} nvlink field values: {code}")
    if code:
        return
    errors = gpu["has"].get("nvlink_errors")
    for (fid, scope), fv in zip(asks, values):
        want = field_fail(gpu, fid)
        value = None
        if fid in (38, 45, 52, 59):
            value = errors[(fid - 38) // 7] if errors else None
            want = want if want is not None else (0 if errors else NOT_SUPPORTED)
        elif want is None:
            tx = fid in (138, 140)
            if not links:
                want = NOT_SUPPORTED
            elif scope == 0xFFFFFFFF:
                want, value = 0, sum(kib(l, tx) for l in links)
            elif scope in links:
                want, value = 0, kib(scope, tx)
            else:
                want = INVALID_ARGUMENT
            if value is not None and fid in (140, 141):
                value += value // 16
        F.check(fv.nvmlReturn == want, f"{g} field {fid} scope {scope}: nvmlReturn {fv.nvmlReturn}, expected {want}")
        if want == 0:
            F.check(fv.valueType == pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG and fv.value.ullVal == value,
                    f"{g} field {fid} scope {scope}: {fv.value.ullVal}, expected {value}")


def check_gpm(lib, handle, gpu, g, k, vary):
    """Support query; then, where supported, two samples of the GPU (and of each MIG slice through its GPU instance
    id) and every metric read back with its own return. Returns k after the utilization calls made here."""
    import pynvml
    supported = gpu["has"].get("gpm_support", [0])[0]
    code, support = call(pynvml.nvmlGpmQueryDeviceSupport, handle)
    forced = fail_code(gpu, None, ["nvmlGpmQueryDeviceSupport"])
    F.check(code == forced, f"{g} GPM support query: {code}, expected {forced}")
    if code == 0:
        F.check(support.isSupportedDevice == supported, f"{g} GPM supported {support.isSupportedDevice}, expected {supported}")
    links = [l for l, (a, _, _) in gpu["nvlinks"].items() if a]
    ids = sorted(set(GPM_ASKED) | set(gpu["gpm"]) | {62, 63, 60, 61} | {62 + 2 * l for l in links if l < 18})
    s1, s2 = pynvml.nvmlGpmSampleAlloc(), pynvml.nvmlGpmSampleAlloc()
    F.check(gpm_live(lib) == 2, "two GPM samples allocated")
    sample_fail = fail_code(gpu, None, ["nvmlGpmSampleGet"])
    for s in (s1, s2):
        code, _ = call(pynvml.nvmlGpmSampleGet, handle, s)
        want = sample_fail or (0 if supported else NOT_SUPPORTED)
        F.check(code == want, f"{g} GPM sample: {code}, expected {want}")
        if vary and code == 0 and fail_code(gpu, None, ["nvmlDeviceGetUtilizationRates"]) == 0:
            # The fake reads k at each sample; move it between the two, as the exporter's ticks do.
            call(pynvml.nvmlDeviceGetUtilizationRates, handle)
            k += 1
    if supported and not sample_fail:
        metrics_fail = fail_code(gpu, None, ["nvmlGpmMetricsGet"])
        code, got = gpm_metrics_get(s1, s2, ids)
        F.check(code == metrics_fail, f"{g} GPM metrics: {code}, expected {metrics_fail}")
        for metric, ret, value, unit in got if code == 0 else []:
            want_code, want = gpm_expected(gpu, None, metric, k - 1 if vary else 0, vary)
            F.check(ret == want_code, f"{g} GPM metric {metric}: return {ret}, expected {want_code}")
            if want_code == 0:
                F.check(abs(value - want) < 1e-9, f"{g} GPM metric {metric}: {value}, expected {want}")
            F.check(unit == (b"MiB/s" if metric in GPM_PER_SEC else b"%"), f"{g} GPM metric {metric}: unit {unit}")
        # The newer sample first: refused.
        code, _ = gpm_metrics_get(s2, s1, ids[:2])
        F.check(code == (metrics_fail or INVALID_ARGUMENT), f"{g} GPM metrics with the samples swapped: {code}")
    mig_on = gpu["has"].get("mig_mode", [0])[0] == 1
    for mg in gpu["migs"] if mig_on else []:
        gi = mg["has"].get("gpu_instance", [None])[0]
        if gi is None:
            continue
        m = f"{g} MIG gi {gi}"
        want = fail_code(gpu, mg, ["nvmlGpmMigSampleGet"]) or (0 if supported else NOT_SUPPORTED)
        codes = [call(pynvml.nvmlGpmMigSampleGet, handle, gi, s)[0] for s in (s1, s2)]
        F.check(codes == [want, want], f"{m} GPM MIG samples: {codes}, expected {want}")
        if want == 0:
            code, got = gpm_metrics_get(s1, s2, sorted(set(GPM_ASKED) | set(mg["gpm"])))
            F.check(code == 0, f"{m} GPM metrics: {code}")
            for metric, ret, value, _ in got if code == 0 else []:
                want_code, want_value = gpm_expected(gpu, mg, metric, 0, vary)
                F.check(ret == want_code and (ret or abs(value - want_value) < 1e-9),
                        f"{m} GPM metric {metric}: {ret} {value}, expected {want_code} {want_value}")
    if mig_on and supported:
        code, _ = call(pynvml.nvmlGpmMigSampleGet, handle, 999, s1)
        F.check(code == NOT_FOUND or fail_code(gpu, None, ["nvmlGpmMigSampleGet"]), f"{g} GPM MIG sample of GPU instance 999: {code}")
    for s in (s1, s2):
        pynvml.nvmlGpmSampleFree(s)
    return k


def edit_device(path, index, line=None, remove=None):
    """Inserts `line` right after the `device` line of GPU block `index` (as the Swift tests do), or removes a line."""
    lines = open(path).read().split("\n")
    if remove is not None:
        lines.remove(remove)
    else:
        seen = -1
        for i, l in enumerate(lines):
            if l.strip() == "device":
                seen += 1
                if seen == index:
                    lines.insert(i + 1, line)
                    break
        else:
            raise ValueError(f"no device {index}")
    tmp = path + ".new"
    open(tmp, "w").write("\n".join(lines))
    os.rename(tmp, path)


def scenario_xid(lib, path):
    import pynvml
    machine = parse_description(path)
    pynvml.nvmlInit()
    n = pynvml.nvmlDeviceGetCount()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
    addr = lambda h: ctypes.cast(h, ctypes.c_void_p).value
    es = pynvml.nvmlEventSetCreate()
    for h in handles:
        pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, es)
    # Events already in the description arrive first, in file order per GPU.
    for i, gpu in enumerate(machine["gpus"]):
        for xid, gi, ci in gpu["xids"]:
            d = pynvml.nvmlEventSetWait(es, 100)
            F.check((addr(d.device), d.eventData, d.gpuInstanceId, d.computeInstanceId) == (addr(handles[i]), xid, gi, ci),
                    f"queued XID {xid} on GPU {i}")
    code, _ = call(pynvml.nvmlEventSetWait, es, 50)
    F.check(code == CODES["TIMEOUT"], f"no event: expected TIMEOUT, got {code}")

    # One appended line: exactly one event, then a timeout.
    edit_device(path, 3, "xid 79")
    t0 = time.time()
    d = pynvml.nvmlEventSetWait(es, 2000)
    F.check(d.eventType == pynvml.nvmlEventTypeXidCriticalError and d.eventData == 79, f"XID 79: {d.eventType} {d.eventData}")
    F.check(addr(d.device) == addr(handles[3]), "XID 79 arrives on GPU 3's handle")
    F.check(pynvml.nvmlDeviceGetUUID(d.device) == machine["gpus"][3]["has"]["uuid"], "event device answers as GPU 3")
    F.check((d.gpuInstanceId, d.computeInstanceId) == (NO_INSTANCE, NO_INSTANCE), "XID instance ids are 0xFFFFFFFF")
    F.check(time.time() - t0 < 0.5, "XID delivered promptly")
    t0 = time.time()
    code, _ = call(pynvml.nvmlEventSetWait, es, 150)
    waited = time.time() - t0
    F.check(code == CODES["TIMEOUT"] and 0.14 < waited < 1.0, f"after the XID: TIMEOUT after ~150 ms, got {code} after {waited:.3f}s")

    # A waiter blocked in another thread receives an event written while it waits, and does not block other calls.
    got = {}
    def waiter():
        got["t"] = time.time()
        got["r"] = call(pynvml.nvmlEventSetWait, es, 5000)
        got["t"] = time.time() - got["t"]
    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.15)
    t0 = time.time()
    for _ in range(50):
        pynvml.nvmlDeviceGetName(handles[0])
    F.check(time.time() - t0 < 0.5, "calls proceed while another thread waits for events")
    edit_device(path, 1, "xid 48 3 0")
    th.join(6)
    code, d = got.get("r", (None, None))
    F.check(code == 0 and d.eventData == 48 and addr(d.device) == addr(handles[1]) and (d.gpuInstanceId, d.computeInstanceId) == (3, 0),
            f"blocked waiter: {code}")
    F.check(got.get("t", 99) < 1.0, f"blocked waiter woke after {got.get('t')}s")

    # New lines are found by content, wherever they are inserted: the Swift tests insert right after `device`.
    edit_device(path, 3, "xid 79")   # GPU 3 now: 79 (new), 79 (delivered)
    edit_device(path, 3, "xid 94")   # GPU 3 now: 94, 79, 79 — pending: one 79 and the 94
    with open(path, "a") as f:
        f.write("\nxid 13\n")       # appended: the last GPU block
    evs = []
    for _ in range(3):
        code, d = call(pynvml.nvmlEventSetWait, es, 1000)
        evs.append((code, d.eventData if d else None, addr(d.device) if d else None))
    F.check(sorted(evs[:2]) == sorted([(0, 94, addr(handles[3])), (0, 79, addr(handles[3]))]) and evs[0][1] == 94,
            f"GPU 3's two new XIDs, in file order: {evs[:2]}")
    F.check(evs[2] == (0, 13, addr(handles[n - 1])), f"XID on the last GPU: {evs[2]}")
    code, _ = call(pynvml.nvmlEventSetWait, es, 50)
    F.check(code == CODES["TIMEOUT"], "then nothing")
    # Removing a line and adding it back delivers it again (the file is the log of what happened).
    edit_device(path, 0, remove="xid 13")
    code, _ = call(pynvml.nvmlEventSetWait, es, 30)
    F.check(code == CODES["TIMEOUT"], f"removing a line delivers nothing: {code}")
    with open(path, "a") as f:
        f.write("xid 13\n")
    code, d = call(pynvml.nvmlEventSetWait, es, 1000)
    F.check(code == 0 and d.eventData == 13, f"re-added line delivered again: {code}")

    # `fail nvmlEventSetWait GPU_IS_LOST` on a registered GPU: waits fail at once (after ~10 ms).
    edit_device(path, 0, "fail nvmlEventSetWait GPU_IS_LOST")
    t0 = time.time()
    code, _ = call(pynvml.nvmlEventSetWait, es, 5000)
    F.check(code == CODES["GPU_IS_LOST"] and 0.005 < time.time() - t0 < 0.5, f"failing wait: {code} after {time.time() - t0:.3f}s")
    edit_device(path, 0, remove="fail nvmlEventSetWait GPU_IS_LOST")
    code, _ = call(pynvml.nvmlEventSetWait, es, 30)
    F.check(code == CODES["TIMEOUT"], f"wait recovers: {code}")
    pynvml.nvmlEventSetFree(es)
    pynvml.nvmlShutdown()


def scenario_lost(lib, path):
    import pynvml
    pynvml.nvmlInit()
    n = pynvml.nvmlDeviceGetCount()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
    names = [pynvml.nvmlDeviceGetUUID(h) for h in handles]
    power = pynvml.nvmlDeviceGetPowerUsage(handles[2])
    edit_device(path, 2, "fail * GPU_IS_LOST")
    for label, fn in (("uuid", pynvml.nvmlDeviceGetUUID), ("power", pynvml.nvmlDeviceGetPowerUsage),
                      ("memory", pynvml.nvmlDeviceGetMemoryInfo), ("processes", pynvml.nvmlDeviceGetComputeRunningProcesses)):
        try:
            fn(handles[2])
            F.check(False, f"lost GPU: {label} answered")
        except pynvml.NVMLError_GpuIsLost:
            F.check(True, "")
    code, values = call(pynvml.nvmlDeviceGetFieldValues, handles[2], [83])
    F.check(code == CODES["GPU_IS_LOST"], f"lost GPU: field values {code}")
    F.check(pynvml.nvmlDeviceGetCount() == n, "count unchanged")
    h2 = pynvml.nvmlDeviceGetHandleByIndex(2)  # `*` does not cover the handle lookup
    F.check(ctypes.cast(h2, ctypes.c_void_p).value == ctypes.cast(handles[2], ctypes.c_void_p).value, "same handle")
    for i in (0, 1, 3):
        F.check(pynvml.nvmlDeviceGetUUID(handles[i]) == names[i], f"GPU {i} unaffected")
    edit_device(path, 2, remove="fail * GPU_IS_LOST")
    F.check(pynvml.nvmlDeviceGetUUID(handles[2]) == names[2], "recovered: uuid")
    F.check(pynvml.nvmlDeviceGetPowerUsage(handles[2]) == power, "recovered: power")
    # A described lookup failure.
    edit_device(path, 1, "fail nvmlDeviceGetHandleByIndex GPU_NOT_FOUND")
    code, _ = call(pynvml.nvmlDeviceGetHandleByIndex, 1)
    F.check(code == CODES["GPU_NOT_FOUND"], f"handle lookup fail: {code}")
    pynvml.nvmlShutdown()


def scenario_vary(lib, path):
    import pynvml
    machine = parse_description(path)
    F.check(machine["vary"] == 1, "the description has vary 1")
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    total = pynvml.nvmlDeviceGetMemoryInfo(h).total
    utils, energies = [], []
    for _ in range(60):
        u = pynvml.nvmlDeviceGetUtilizationRates(h)
        utils.append((u.gpu, u.memory))
        m = pynvml.nvmlDeviceGetMemoryInfo(h)
        F.check(m.used <= m.total == total and m.free == m.total - m.used, "memory within bounds")
        p = pynvml.nvmlDeviceGetPowerUsage(h)
        F.check(0 < p <= max(pynvml.nvmlDeviceGetEnforcedPowerLimit(h), machine["gpus"][0]["has"]["power"][0]), f"power {p} within limit")
        energies.append(pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
        t = pynvml.nvmlDeviceGetTemperature(h, 0)
        F.check(0 < t < 100, f"temperature {t}")
        sm = pynvml.nvmlDeviceGetClockInfo(h, 1)
        F.check(0 < sm <= 1980, f"SM clock {sm}")
        F.check(all(0 <= x <= 100 for x in utils[-1]), f"utilization {utils[-1]} within 0..100")
    F.check(len(set(utils)) > 30, f"utilization varies between calls ({len(set(utils))} distinct)")
    F.check(all(b > a for a, b in zip(energies, energies[1:])), "energy strictly increasing")
    # Samples are stamped with the call time: an incremental reader sees new samples on every call.
    h3 = pynvml.nvmlDeviceGetHandleByIndex(3)
    s1 = pynvml.nvmlDeviceGetProcessUtilization(h3, 0)
    time.sleep(0.002)
    s2 = pynvml.nvmlDeviceGetProcessUtilization(h3, max(s.timeStamp for s in s1))
    F.check(len(s2) == len(s1) and s2[0].timeStamp > s1[0].timeStamp, "vary: fresh process samples each call")
    pynvml.nvmlShutdown()


def scenario_nodriver(lib, path):
    import pynvml
    try:
        pynvml.nvmlInit()
        F.check(False, "nvmlInit without FAKE_NVML_CONFIG succeeded")
    except pynvml.NVMLError_DriverNotLoaded:
        F.check(True, "")
    F.check(str(pynvml.NVMLError(9)) == "Driver Not Loaded", "error text")
    os.environ["FAKE_NVML_CONFIG"] = "/nonexistent/machine.nvml"
    code, _ = call(pynvml.nvmlInit)
    F.check(code == CODES["DRIVER_NOT_LOADED"], f"missing file: {code}")
    # Calls before a successful init.
    raw = ctypes.CDLL(lib)
    n = ctypes.c_uint(0)
    F.check(raw.nvmlDeviceGetCount_v2(ctypes.byref(n)) == CODES["UNINITIALIZED"], "count before init: UNINITIALIZED")
    F.check(raw.nvmlShutdown() == CODES["UNINITIALIZED"], "shutdown before init: UNINITIALIZED")
    # init_fail in a description.
    tmp = path + ".initfail"
    open(tmp, "w").write("init_fail RESET_REQUIRED\ndriver_version 1.0\n")
    os.environ["FAKE_NVML_CONFIG"] = tmp
    code, _ = call(pynvml.nvmlInit)
    F.check(code == CODES["RESET_REQUIRED"], f"init_fail: {code}")
    # A description that does not parse: init fails with UNKNOWN.
    open(tmp, "w").write("device\nbogus_key 1\n")
    code, _ = call(pynvml.nvmlInit)
    F.check(code == CODES["UNKNOWN"], f"unparseable description at init: {code}")
    os.unlink(tmp)


class FieldValue(ctypes.Structure):
    _fields_ = [("fieldId", ctypes.c_uint), ("scopeId", ctypes.c_uint), ("timestamp", ctypes.c_longlong),
                ("latencyUsec", ctypes.c_longlong), ("valueType", ctypes.c_int), ("nvmlReturn", ctypes.c_int),
                ("value", ctypes.c_ulonglong)]


class ProcessInfo(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong), ("gpuInstanceId", ctypes.c_uint),
                ("computeInstanceId", ctypes.c_uint)]


class UtilSample(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("timeStamp", ctypes.c_ulonglong), ("smUtil", ctypes.c_uint),
                ("memUtil", ctypes.c_uint), ("encUtil", ctypes.c_uint), ("decUtil", ctypes.c_uint)]


def scenario_ctypes(lib, path):
    """The C interface directly: sizes, NULLs, per-entry field returns, lastSeen, reload edge cases."""
    L = ctypes.CDLL(lib)
    F.check(ctypes.sizeof(FieldValue) == 40 and ctypes.sizeof(ProcessInfo) == 24 and ctypes.sizeof(UtilSample) == 32,
            "struct sizes")
    L.nvmlErrorString.restype = ctypes.c_char_p
    for code, text in ((0, b"Success"), (3, b"Not Supported"), (15, b"GPU is lost"), (9, b"Driver Not Loaded"),
                       (7, b"Insufficient Size"), (6, b"Not Found"), (999, b"Unknown Error"), (12345, b"Unknown Error")):
        F.check(L.nvmlErrorString(code) == text, f"nvmlErrorString({code}) = {L.nvmlErrorString(code)}")
    F.check(L.nvmlInit_v2() == 0, "init")
    F.check(L.nvmlInit_v2() == 0 and L.nvmlShutdown() == 0, "nested init/shutdown")
    dev = ctypes.c_void_p()
    F.check(L.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev)) == 0, "handle 0")
    F.check(L.nvmlDeviceGetHandleByIndex_v2(999, ctypes.byref(dev)) == INVALID_ARGUMENT, "handle 999: INVALID_ARGUMENT")
    F.check(L.nvmlDeviceGetHandleByIndex_v2(0, None) == INVALID_ARGUMENT, "NULL handle out: INVALID_ARGUMENT")
    h0, h3 = ctypes.c_void_p(), ctypes.c_void_p()
    L.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h0))
    L.nvmlDeviceGetHandleByIndex_v2(3, ctypes.byref(h3))

    # Buffers and pointers.
    buf = ctypes.create_string_buffer(96)
    F.check(L.nvmlDeviceGetName(h0, buf, 96) == 0 and buf.value == b"NVIDIA H100 80GB HBM3", "name")
    F.check(L.nvmlDeviceGetName(h0, buf, 21) == INSUFFICIENT_SIZE, "name in 21 bytes: INSUFFICIENT_SIZE")
    F.check(L.nvmlDeviceGetName(h0, buf, 22) == 0, "name in 22 bytes")
    F.check(L.nvmlDeviceGetUUID(h0, None, 96) == INVALID_ARGUMENT, "NULL buffer: INVALID_ARGUMENT")
    F.check(L.nvmlSystemGetDriverVersion(buf, 4) == INSUFFICIENT_SIZE, "driver version in 4 bytes")
    F.check(L.nvmlDeviceGetPowerUsage(h0, None) == INVALID_ARGUMENT, "NULL out: INVALID_ARGUMENT")
    F.check(L.nvmlDeviceGetPowerUsage(None, ctypes.byref(ctypes.c_uint())) == INVALID_ARGUMENT, "NULL device")
    bogus = ctypes.c_void_p(ctypes.addressof(buf))
    F.check(L.nvmlDeviceGetPowerUsage(bogus, ctypes.byref(ctypes.c_uint())) == INVALID_ARGUMENT, "foreign pointer as device")
    F.check(L.nvmlDeviceGetTemperature(h0, 7, ctypes.byref(ctypes.c_uint())) == INVALID_ARGUMENT, "bad sensor")
    F.check(L.nvmlDeviceGetClockInfo(h0, 9, ctypes.byref(ctypes.c_uint())) == INVALID_ARGUMENT, "bad clock type")
    mem2 = (ctypes.c_uint * 10)()
    mem2[0] = 0x01000028
    F.check(L.nvmlDeviceGetMemoryInfo_v2(h0, mem2) == CODES["ARGUMENT_VERSION_MISMATCH"], "memory v2 with a wrong version")

    # Field values: per-entry returns, the call succeeds; `fail field:N`.
    ids = [82, 83, 185, 1, 94, 144, 31, 9999]
    vals = (FieldValue * len(ids))()
    for i, fid in enumerate(ids):
        vals[i].fieldId = fid
        vals[i].nvmlReturn = 12345
    F.check(L.nvmlDeviceGetFieldValues(h0, len(ids), vals) == 0, "field values call")
    rets = [v.nvmlReturn for v in vals]
    F.check(rets == [0, 0, 0, 3, 0, 0, 0, 3], f"per-entry returns {rets}")
    types = [v.valueType for v in vals if v.nvmlReturn == 0]
    F.check(types == [1, 3, 1, 3, 1, 1], f"value types {types} (UINT temp, ULL energy, UINT power, ULL replay, UINT flags)")
    F.check(L.nvmlDeviceGetFieldValues(h0, 1, None) == INVALID_ARGUMENT, "field values NULL")
    F.check(L.nvmlDeviceGetFieldValues(h0, 0, None) == 0, "zero field values")
    edit_device(path, 0, "fail field:83 NO_PERMISSION")
    L.nvmlDeviceGetFieldValues(h0, len(ids), vals)
    F.check([v.nvmlReturn for v in vals][:3] == [0, 4, 0], "fail field:83 affects only that entry")
    edit_device(path, 0, remove="fail field:83 NO_PERMISSION")

    # GPM: the layouts pynvml uses, and the fake's refusals (wrong versions, too many metrics, mixed devices).
    import pynvml
    F.check((ctypes.sizeof(pynvml.c_nvmlGpmMetricsGet_t), ctypes.sizeof(pynvml.c_nvmlGpmMetric_t),
             ctypes.sizeof(pynvml.c_nvmlGpmSupport_t), pynvml.NVML_GPM_METRIC_MAX) == (24 + 40 * 477, 40, 8, 477),
            "GPM struct sizes as cnvml.h asserts them")
    support = (ctypes.c_uint * 2)(2, 7)
    F.check(L.nvmlGpmQueryDeviceSupport(h0, support) == CODES["ARGUMENT_VERSION_MISMATCH"], "GPM support with version 2")
    support[0] = 1
    F.check(L.nvmlGpmQueryDeviceSupport(h0, support) == 0 and support[1] == 1, "GPM support")
    s1, s2, s3 = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    for sp in (s1, s2, s3):
        F.check(L.nvmlGpmSampleAlloc(ctypes.byref(sp)) == 0, "GPM sample alloc")
    F.check(L.fakeNvmlGpmSamplesAllocated() == 3, "three GPM samples live")
    get = pynvml.c_nvmlGpmMetricsGet_t()
    get.version, get.numMetrics, get.sample1, get.sample2 = 1, 1, ctypes.cast(s1, pynvml.c_nvmlGpmSample_t), ctypes.cast(s2, pynvml.c_nvmlGpmSample_t)
    get.metrics[0].metricId = 2
    F.check(L.nvmlGpmMetricsGet(ctypes.byref(get)) == INVALID_ARGUMENT, "GPM metrics of samples never taken")
    F.check(L.nvmlGpmSampleGet(h0, s1) == 0 and L.nvmlGpmSampleGet(h3, s2) == 0, "GPM samples of two GPUs")
    F.check(L.nvmlGpmMetricsGet(ctypes.byref(get)) == INVALID_ARGUMENT, "GPM metrics across two GPUs")
    F.check(L.nvmlGpmSampleGet(h0, s2) == 0, "GPM second sample")
    F.check(L.nvmlGpmMetricsGet(ctypes.byref(get)) == 0 and get.metrics[0].nvmlReturn == 0 and get.metrics[0].value == 88.0,
            f"GPM SM activity of GPU 0: {get.metrics[0].value}")
    get.numMetrics = 99
    F.check(L.nvmlGpmMetricsGet(ctypes.byref(get)) == INVALID_ARGUMENT, "99 GPM metrics: more than an R5xx driver takes")
    get.numMetrics, get.version = 1, 2
    F.check(L.nvmlGpmMetricsGet(ctypes.byref(get)) == CODES["ARGUMENT_VERSION_MISMATCH"], "GPM metrics version 2")
    F.check(L.nvmlGpmMigSampleGet(h0, 1, s3) == NOT_SUPPORTED, "MIG sample of a GPU with MIG off")
    F.check(L.nvmlGpmSampleGet(h0, ctypes.c_void_p(ctypes.addressof(buf))) == INVALID_ARGUMENT, "foreign pointer as GPM sample")
    for sp in (s1, s2, s3):
        F.check(L.nvmlGpmSampleFree(sp) == 0, "GPM sample free")
    F.check(L.fakeNvmlGpmSamplesAllocated() == 0 and L.nvmlGpmSampleFree(s1) == INVALID_ARGUMENT, "freed, and not twice")

    # Running processes: size query, too small, exact.
    count = ctypes.c_uint(0)
    F.check(L.nvmlDeviceGetComputeRunningProcesses_v3(h3, ctypes.byref(count), None) == INSUFFICIENT_SIZE and count.value == 2,
            f"process count query: {count.value}")
    procs = (ProcessInfo * 2)()
    count.value = 1
    F.check(L.nvmlDeviceGetComputeRunningProcesses_v3(h3, ctypes.byref(count), procs) == INSUFFICIENT_SIZE and count.value == 2,
            "too small a process buffer")
    count.value = 2
    F.check(L.nvmlDeviceGetComputeRunningProcesses_v3(h3, ctypes.byref(count), procs) == 0 and
            [p.pid for p in procs] == [60110, 60111] and procs[0].gpuInstanceId == NO_INSTANCE, "processes")
    h7 = ctypes.c_void_p()
    L.nvmlDeviceGetHandleByIndex_v2(7, ctypes.byref(h7))
    count.value = 0
    F.check(L.nvmlDeviceGetComputeRunningProcesses_v3(h7, ctypes.byref(count), None) == 0 and count.value == 0,
            "no processes: SUCCESS with 0")
    F.check(L.nvmlDeviceGetComputeRunningProcesses_v3(h3, None, None) == INVALID_ARGUMENT, "NULL count")

    # Process utilization and lastSeen.
    n = ctypes.c_uint(0)
    F.check(L.nvmlDeviceGetProcessUtilization(h3, None, ctypes.byref(n), ctypes.c_ulonglong(0)) == INSUFFICIENT_SIZE and n.value == 2,
            f"sample count query: {n.value}")
    samples = (UtilSample * 2)()
    n.value = 1
    F.check(L.nvmlDeviceGetProcessUtilization(h3, samples, ctypes.byref(n), ctypes.c_ulonglong(0)) == INSUFFICIENT_SIZE, "samples: too small")
    n.value = 2
    now = time.time() * 1e6
    F.check(L.nvmlDeviceGetProcessUtilization(h3, samples, ctypes.byref(n), ctypes.c_ulonglong(0)) == 0 and n.value == 2, "samples")
    stamp = samples[0].timeStamp
    F.check(samples[1].timeStamp == stamp and now - 120e6 < stamp <= now + 1e6, f"sample stamp {stamp} is the load time")
    F.check((samples[0].pid, samples[0].smUtil, samples[0].memUtil) == (60110, 41, 19), "sample values")
    n.value = 2
    F.check(L.nvmlDeviceGetProcessUtilization(h3, samples, ctypes.byref(n), ctypes.c_ulonglong(stamp)) == NOT_FOUND, "nothing newer: NOT_FOUND")
    F.check(L.nvmlDeviceGetProcessUtilization(h3, None, ctypes.byref(n), ctypes.c_ulonglong(stamp)) == NOT_FOUND, "size query, nothing newer")
    time.sleep(0.01)
    edit_device(path, 3, "# touched")  # a reload: the samples are new again
    n.value = 2
    F.check(L.nvmlDeviceGetProcessUtilization(h3, samples, ctypes.byref(n), ctypes.c_ulonglong(stamp)) == 0 and samples[0].timeStamp > stamp,
            "after a reload the samples are newer")

    # A description that does not parse keeps the machine (the stderr line is checked by the parent).
    good = open(path).read()
    open(path + ".new", "w").write(good + "\nbogus_key 1\n")
    os.rename(path + ".new", path)
    F.check(L.nvmlDeviceGetName(h0, buf, 96) == 0 and buf.value == b"NVIDIA H100 80GB HBM3", "unparseable edit keeps the machine")
    # Fewer GPUs: handles beyond the count are INVALID_ARGUMENT; more again: they answer.
    blocks = good.split("\ndevice\n")
    open(path + ".new", "w").write("\ndevice\n".join(blocks[:3]))
    os.rename(path + ".new", path)
    cnt = ctypes.c_uint()
    L.nvmlDeviceGetCount_v2(ctypes.byref(cnt))
    F.check(cnt.value == 2, f"two GPUs after the edit ({cnt.value})")
    F.check(L.nvmlDeviceGetName(h3, buf, 96) == INVALID_ARGUMENT, "handle beyond the count: INVALID_ARGUMENT")
    open(path + ".new", "w").write(good)
    os.rename(path + ".new", path)
    F.check(L.nvmlDeviceGetName(h3, buf, 96) == 0, "handle valid again after the GPU returns")

    # Threads hammering the library while the file changes.
    stop = time.time() + 0.8
    errors = []
    def hammer(i):
        h = ctypes.c_void_p()
        u = ctypes.c_uint()
        while time.time() < stop:
            if L.nvmlDeviceGetHandleByIndex_v2(i % 8, ctypes.byref(h)) != 0 or L.nvmlDeviceGetPowerUsage(h, ctypes.byref(u)) != 0:
                errors.append(i)
                return
    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for j in range(20):
        edit_device(path, j % 8, f"# edit {j}")
        time.sleep(0.02)
    for t in threads:
        t.join()
    F.check(not errors, f"concurrent calls during reloads failed: {errors}")
    F.check(L.nvmlShutdown() == 0 and L.nvmlDeviceGetCount_v2(ctypes.byref(cnt)) == CODES["UNINITIALIZED"], "after shutdown: UNINITIALIZED")


def scenario_old(lib, path):
    """The old-driver build: older names present, newer ones absent; what remains works."""
    import pynvml
    present = ["nvmlInit_v2", "nvmlDeviceGetComputeRunningProcesses_v2", "nvmlDeviceGetMPSComputeRunningProcesses_v2",
               "nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetMemoryInfo",
               "nvmlEventSetCreate", "nvmlDeviceRegisterEvents", "nvmlEventSetFree", "nvmlDeviceGetNvLinkState"]
    absent = ["nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetMPSComputeRunningProcesses_v3",
              "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetFieldValues",
              "nvmlSystemGetCudaDriverVersion_v2", "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetMigMode",
              "nvmlDeviceGetMaxMigDeviceCount", "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetGpuInstanceId",
              "nvmlDeviceGetComputeInstanceId", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", "nvmlEventSetWait_v2",
              "nvmlGpmQueryDeviceSupport", "nvmlGpmSampleAlloc", "nvmlGpmSampleFree", "nvmlGpmSampleGet",
              "nvmlGpmMigSampleGet", "nvmlGpmMetricsGet"]
    raw = ctypes.CDLL(lib)
    for s in present:
        F.check(hasattr(raw, s), f"old driver exports {s}")
    for s in absent:
        F.check(not hasattr(raw, s), f"old driver does not export {s}")
    machine = parse_description(path)
    pynvml.nvmlInit()
    assert_loaded_fake(lib)
    code, _ = call(pynvml.nvmlDeviceGetComputeRunningProcesses_v3, pynvml.nvmlDeviceGetHandleByIndex(0))
    F.check(code == CODES["FUNCTION_NOT_FOUND"], f"_v3 through pynvml: {code}")
    h1 = pynvml.nvmlDeviceGetHandleByIndex(1)
    gpu = machine["gpus"][1]
    F.check([(p.pid, p.usedGpuMemory) for p in pynvml.nvmlDeviceGetComputeRunningProcesses_v2(h1)] ==
            [(p, m) for p, m, mps in gpu["procs"] if not mps], "processes through _v2")
    F.check(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h1) == gpu["has"]["clocks_event_reasons"][0], "throttle reasons")
    F.check(pynvml.nvmlDeviceGetTotalEccErrors(h1, 0, 0) == gpu["has"]["ecc_volatile"][0], "ECC through nvmlDeviceGetTotalEccErrors")
    F.check(pynvml.nvmlDeviceGetMemoryInfo(h1).total == gpu["has"]["memory"][0], "memory v1")
    pynvml.nvmlShutdown()


SCENARIOS = {"describe": describe, "xid": scenario_xid, "lost": scenario_lost, "vary": scenario_vary,
             "nodriver": scenario_nodriver, "ctypes": scenario_ctypes, "old": scenario_old}


def child(scenario, lib, path):
    try:
        SCENARIOS[scenario](lib, path)
    except Exception as e:  # an unexpected NVMLError or a crash in the checks
        import traceback
        traceback.print_exc()
        F.errors.append(f"{scenario}: {e!r}")
    print(f"  {F.checks} checks, {len(F.errors)} failures", flush=True)
    sys.exit(1 if F.errors else 0)


# ------------------------------------------------------------------------------------------------------------------
# Parent side.

def run(scenario, lib, description, work, copy=True, env_config=True):
    libdir = os.path.join(work, "lib-" + os.path.basename(lib))
    if not os.path.isdir(libdir):
        os.makedirs(libdir)
        os.symlink(os.path.abspath(lib), os.path.join(libdir, "libnvidia-ml.so.1"))
    path = description
    if description and copy:
        path = os.path.join(work, f"{scenario}-{os.path.basename(description)}")
        shutil.copyfile(description, path)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env.pop("FAKE_NVML_CONFIG", None)
    if env_config and path:
        env["FAKE_NVML_CONFIG"] = path
    print(f"== {scenario} {os.path.basename(description) if description else ''} ({os.path.basename(lib)})", flush=True)
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", scenario, os.path.abspath(lib), path or ""],
                       env=env, capture_output=True, text=True, timeout=120)
    sys.stdout.write(p.stdout)
    if p.stderr.strip():
        sys.stdout.write("  stderr: " + p.stderr.strip().replace("\n", "\n  stderr: ") + "\n")
    return p


def main():
    args = sys.argv[1:]
    if args and args[0] == "--child":
        child(args[1], args[2], args[3] or None)
    old = None
    if "--old" in args:
        i = args.index("--old")
        old = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    lib, fixtures = args
    try:
        import pynvml  # noqa: F401
    except ImportError:
        sys.exit("pynvml is not installed: pip install nvidia-ml-py")
    names = sorted(f for f in os.listdir(fixtures) if f.endswith(".nvml"))
    if not names:
        sys.exit(f"no .nvml descriptions in {fixtures}")
    failed = []
    with tempfile.TemporaryDirectory(prefix="fake-nvml-check-") as work:
        def go(scenario, description, lib=lib, **kw):
            p = run(scenario, lib, description, work, **kw)
            if p.returncode != 0:
                failed.append(f"{scenario} {os.path.basename(description or '')}")
            return p
        for name in names:
            path = os.path.join(fixtures, name)
            try:
                parse_description(path)
            except Exception as e:
                failed.append(f"{name}: {e}")
                continue
            go("describe", path)
        h100 = os.path.join(fixtures, "h100x8.nvml")
        go("xid", h100)
        go("lost", os.path.join(fixtures, "falls-off-bus.nvml"))
        go("vary", os.path.join(fixtures, "vary.nvml"))
        go("nodriver", h100, env_config=False)
        p = go("ctypes", h100)
        if "bogus_key" not in p.stderr or p.stderr.count("unknown key 'bogus_key'") != 1:
            failed.append("ctypes: an unparseable edit must print exactly one stderr line naming file:line")
        if old:
            go("old", os.path.join(fixtures, "a100-mig.nvml"), lib=old)
    if failed:
        print("FAILED: " + "; ".join(failed))
        sys.exit(1)
    print("all fake NVML checks passed")


if __name__ == "__main__":
    main()
