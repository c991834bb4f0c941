#!/usr/bin/env python3
"""Writes the inference fixtures: a sequence of scrapes per engine, and the raw observations behind them.

Each engine directory holds t0.prom … t3.prom (scrapes 15 s apart) and observations.txt, one line per observation
made *between* two scrapes: `<scrape index> <normalized histogram> <value in seconds>`. The scrapes count those
observations cumulatively on top of a history that predates t0 (so lifetime and window differ), in the engine's
own names, types, labels, units and exposition style (Python prometheus_client for vLLM/SGLang, the Rust metrics
exporter for TGI, Triton's own writer). Deterministic: re-running gives the same files.

    python3 Tests/Fixtures/inference/generate.py

What comes from shared/reference/inference-and-conformance.md (checked name by name): every family the exporter
maps — vLLM's gauges, counters and histograms with labels model_name and engine (e2e buckets 0.3 … 7680); SGLang's
gauges and histograms with model_name; TGI's gauges, counters and second-valued histograms (no model label);
Triton's counters (cumulative µs for durations), pending-request gauge and the opt-in first-response histogram in
ms, with labels model and version.

UNVERIFIED (not in the reference; present so that the normalizer is shown to ignore or guard them, never relied on):
- vLLM's `finished_reason` label on vllm:request_success_total (the normalizer sums over it) and prometheus_client's
  `<histogram>_created` gauges;
- TGI's tgi_request_generated_tokens histogram, Triton's nv_inference_request_failure{reason},
  nv_inference_compute_infer_duration_us and nv_gpu_utilization: families nothing maps;
- TensorRT-LLM's nv_trt_llm_request_metrics{request_type} and nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type}
  (triton-trtllm/): names and label values as the TensorRT-LLM backend is commonly documented, not in the reference;
- bucket layouts other than vLLM's e2e bounds, and every value: plausible, not copied from a real server.

vllm-restart/ is a server restarting between t1 and t2: its counters start again from zero, and its observations.txt
holds what it observed after the restart (index 2 = between the restart and t2).

bad/ is written by hand (each file says what is wrong with it); golden/ is written by the Swift tests
(UPDATE_GOLDEN=1), not by this script.
"""
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SCRAPES = 4            # t0..t3
INTERVAL_MS = 15_000   # documented in the tests: t_i = i * 15 s


def fmt(v):
    """Go-ish float formatting: integers without exponent, others shortest repr."""
    if v == math.inf:
        return "+Inf"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def pyfmt(v):
    """prometheus_client writes floats with a trailing .0."""
    if v == math.inf:
        return "+Inf"
    return repr(float(v))


class Histogram:
    def __init__(self, bounds):
        self.bounds = list(bounds)
        self.counts = [0] * (len(bounds) + 1)  # last is +Inf
        self.sum = 0.0

    def observe(self, v):
        for i, b in enumerate(self.bounds):
            if v <= b:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += v

    def cumulative(self):
        out, running = [], 0
        for c in self.counts:
            running += c
            out.append(running)
        return out


def lognormal(rng, median, sigma):
    return median * math.exp(rng.gauss(0, sigma))


def draw(rng, shape, bounds):
    """One observation of `shape`, rounded to µs, redrawn if it falls on a bucket bound: the tests recompute bucket
    membership from the exposed bounds (Triton's ms bounds divided by 1000), and a value on a bound could land on
    either side through rounding."""
    while True:
        v = round(lognormal(rng, *SHAPES[shape]), 6)
        if all(abs(v - b) > 1e-9 for b in bounds):
            return v


def histogram_lines(name, labels, hist, scale, f, label_first=False, le_fmt=None):
    """labels: list of (k, v). scale: the engine's unit per second (1000 for ms)."""
    le_fmt = le_fmt or f
    lines = []
    for bound, count in zip(hist.bounds + [math.inf], hist.cumulative()):
        le = ("le", le_fmt(bound * scale if bound != math.inf else bound))
        ls = [le] + labels if label_first else labels + [le]
        lines.append(f"{name}_bucket{{{render_labels(ls)}}} {f(count)}")
    lines.append(f"{name}_sum{{{render_labels(labels)}}} {f(round(hist.sum * scale, 6))}" if labels
                 else f"{name}_sum {f(round(hist.sum * scale, 6))}")
    lines.append(f"{name}_count{{{render_labels(labels)}}} {f(sum(hist.counts))}" if labels
                 else f"{name}_count {f(sum(hist.counts))}")
    return lines


def render_labels(ls):
    return ",".join(f'{k}="{v}"' for k, v in ls)


def series(name, labels, value, f):
    return f"{name}{{{render_labels(labels)}}} {f(value)}" if labels else f"{name} {f(value)}"


# Latency shapes (seconds): median, log-sigma.
SHAPES = {
    "request_duration": (2.0, 0.8),
    "time_to_first_token": (0.12, 0.9),
    "time_per_output_token": (0.03, 0.5),
    "queue_time": (0.05, 1.2),
}

VLLM_E2E = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
            960.0, 1920.0, 7680.0]
VLLM_TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
             80.0, 160.0, 640.0, 2560.0]
VLLM_TPOT = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
VLLM_QUEUE = VLLM_E2E
SGLANG_E2E = [0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0]
SGLANG_TTFT = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0]
SGLANG_TPOT = [0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0,
               2.0, 4.0]
TGI_DURATION = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0]
TGI_TOKENS = [1.0, 8.0, 32.0, 128.0, 512.0, 2048.0]
TRITON_FIRST_RESPONSE_MS = [10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0]


class Engine:
    """One fake server: histograms per normalized name, and the gauges/counters at each scrape."""

    def __init__(self, name, seed, layouts, per_interval):
        self.name = name
        self.rng = random.Random(seed)
        self.hists = {k: Histogram(v) for k, v in layouts.items()}
        self.per_interval = per_interval
        self.observations = []
        for k in self.hists:  # history before t0
            for _ in range(self.rng.randint(200, 400)):
                self.hists[k].observe(draw(self.rng, k, self.hists[k].bounds))

    def advance(self, index):
        for k, h in self.hists.items():
            n = self.per_interval[index] if isinstance(self.per_interval, list) else self.per_interval
            for _ in range(n):
                v = draw(self.rng, k, h.bounds)
                h.observe(v)
                self.observations.append((index, k, v))


def write(engine_dir, files, observations):
    os.makedirs(os.path.join(HERE, engine_dir), exist_ok=True)
    for i, text in enumerate(files):
        with open(os.path.join(HERE, engine_dir, f"t{i}.prom"), "w") as out:
            out.write(text)
    with open(os.path.join(HERE, engine_dir, "observations.txt"), "w") as out:
        out.write("# scrape-index histogram value-seconds: observed between scrape index-1 and scrape index\n")
        for index, k, v in observations:
            out.write(f"{index} {k} {v!r}\n")


def vllm():
    model = "meta-llama/Llama-3.1-8B-Instruct"
    e = Engine("vllm", 11, {"request_duration": VLLM_E2E, "time_to_first_token": VLLM_TTFT,
                            "time_per_output_token": VLLM_TPOT, "queue_time": VLLM_QUEUE}, [0, 40, 0, 25])
    files = []
    stop, length, prompt, gen = 5000.0, 120.0, 900000.0, 350000.0
    for i in range(SCRAPES):
        if i:
            e.advance(i)
        n = e.per_interval[i]
        stop += n - n // 5
        length += n // 5
        prompt += n * 800
        gen += n * 230
        lab = [("engine", "0"), ("model_name", model)]
        L = []
        def gauge(name, help_, value):
            L.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge", series(name, lab, value, pyfmt)])
        gauge("vllm:num_requests_running", "Number of requests in model execution batches.", [0, 7, 3, 12][i])
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", [0, 2, 0, 9][i])
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", [0.0, 0.4375, 0.125, 0.8125][i])
        L += ["# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
              "# TYPE vllm:prompt_tokens_total counter", series("vllm:prompt_tokens_total", lab, prompt, pyfmt),
              "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
              "# TYPE vllm:generation_tokens_total counter",
              series("vllm:generation_tokens_total", lab, gen, pyfmt),
              "# HELP vllm:request_success_total Count of successfully processed requests.",
              "# TYPE vllm:request_success_total counter",
              # finished_reason: UNVERIFIED (not in the reference); the normalizer sums over labels it does not keep.
              series("vllm:request_success_total", lab + [("finished_reason", "stop")], stop, pyfmt),
              series("vllm:request_success_total", lab + [("finished_reason", "length")], length, pyfmt),
              series("vllm:request_success_total", lab + [("finished_reason", "abort")], 0.0, pyfmt)]
        for key, name, help_ in [
            ("time_to_first_token", "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds."),
            ("time_per_output_token", "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds."),
            ("request_duration", "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds."),
            ("queue_time", "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request."),
        ]:
            L += [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
            L += histogram_lines(name, lab, e.hists[key], 1, pyfmt)
            # prometheus_client's _created gauge (UNVERIFIED that vLLM keeps it): folded away by the parser.
            L += [f"# HELP {name}_created {help_}", f"# TYPE {name}_created gauge",
                  series(f"{name}_created", lab, 1.7250123456e9, pyfmt)]
        files.append("\n".join(L) + "\n")
    write("vllm", files, e.observations)


def sglang():
    model = "Qwen/Qwen2.5-7B-Instruct"
    e = Engine("sglang", 23, {"request_duration": SGLANG_E2E, "time_to_first_token": SGLANG_TTFT,
                              "time_per_output_token": SGLANG_TPOT}, [0, 30, 30, 0])
    files = []
    for i in range(SCRAPES):
        if i:
            e.advance(i)
        lab = [("model_name", model)]
        L = []
        for name, help_, values in [
            ("sglang:num_running_reqs", "The number of running requests.", [0, 4, 6, 0]),
            ("sglang:num_queue_reqs", "The number of requests in the waiting queue.", [0, 1, 3, 0]),
            ("sglang:token_usage", "The token usage.", [0.0, 0.21, 0.35, 0.02]),
        ]:
            L += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", series(name, lab, values[i], pyfmt)]
        for key, name, help_ in [
            ("time_to_first_token", "sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds."),
            ("time_per_output_token", "sglang:time_per_output_token_seconds",
             "Histogram of time per output token in seconds."),
            ("request_duration", "sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds"),
        ]:
            L += [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
            L += histogram_lines(name, lab, e.hists[key], 1, pyfmt)
        files.append("\n".join(L) + "\n")
    write("sglang", files, e.observations)


def tgi():
    e = Engine("tgi", 37, {"request_duration": TGI_DURATION, "time_per_output_token": TGI_DURATION,
                           "queue_time": TGI_DURATION}, [0, 20, 35, 10])
    tokens = Histogram(TGI_TOKENS)
    for _ in range(300):
        tokens.observe(float(e.rng.randint(1, 1500)))
    files = []
    success, count = 300.0, 305.0
    for i in range(SCRAPES):
        if i:
            e.advance(i)
            for _ in range(e.per_interval[i]):
                tokens.observe(float(e.rng.randint(1, 1500)))
        success += e.per_interval[i]
        count += e.per_interval[i] + (1 if i == 2 else 0)
        L = ["# TYPE tgi_queue_size gauge", f"tgi_queue_size {[0, 3, 5, 1][i]}",
             "# TYPE tgi_batch_current_size gauge", f"tgi_batch_current_size {[0, 8, 16, 2][i]}",
             "# TYPE tgi_request_count counter", f"tgi_request_count {fmt(count)}",
             "# TYPE tgi_request_success counter", f"tgi_request_success {fmt(success)}"]
        for key, name in [("request_duration", "tgi_request_duration"),
                          ("queue_time", "tgi_request_queue_duration"),
                          ("time_per_output_token", "tgi_request_mean_time_per_token_duration")]:
            L += [f"# TYPE {name} histogram"] + histogram_lines(name, [], e.hists[key], 1, fmt)
        # UNVERIFIED family (not in the reference), mapped to nothing.
        L += ["# TYPE tgi_request_generated_tokens histogram"] + histogram_lines(
            "tgi_request_generated_tokens", [], tokens, 1, fmt)
        files.append("\n\n".join(["\n".join(L[j:j + 2]) for j in range(0, 8, 2)] + ["\n".join(L[8:])]) + "\n")
    write("tgi", files, e.observations)


def triton(trtllm):
    # Two models: ttft histogram (opt-in, ms) for the LLM; cumulative µs counters for both.
    e = Engine("triton", 41 if not trtllm else 43, {"time_to_first_token": [b / 1000 for b in TRITON_FIRST_RESPONSE_MS]},
               [0, 25, 0, 15])
    files = []
    models = [("tensorrt_llm" if trtllm else "llama", "1"), ("preprocessing" if trtllm else "resnet50", "1")]
    state = {m: {"success": 1000.0, "request_us": 4.0e8, "queue_us": 2.0e7, "compute_us": 3.0e8} for m, _ in models}
    for i in range(SCRAPES):
        if i:
            e.advance(i)
        # Requests between scrapes: the LLM's latencies are the observation list's request_duration means.
        for m, _ in models:
            n = e.per_interval[i]
            s = state[m]
            s["success"] += n
            s["request_us"] += n * (1_200_000 if m in ("llama", "tensorrt_llm") else 8_000)
            s["queue_us"] += n * (50_000 if m in ("llama", "tensorrt_llm") else 300)
            s["compute_us"] += n * (1_000_000 if m in ("llama", "tensorrt_llm") else 6_500)
        L = []
        def counter(name, help_, key, scale=1):
            L.extend([f"# HELP {name} {help_}", f"# TYPE {name} counter"])
            for m, v in models:
                L.append(series(name, [("model", m), ("version", v)], state[m][key] * scale, fmt))
        counter("nv_inference_request_success", "Number of successful inference requests, all batch sizes", "success")
        # UNVERIFIED families (not in the reference): failure{reason}, compute_infer_duration_us, nv_gpu_utilization.
        L += ["# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes",
              "# TYPE nv_inference_request_failure counter"]
        for m, v in models:
            L.append(series("nv_inference_request_failure", [("model", m), ("reason", "BACKEND"), ("version", v)], 2, fmt))
        counter("nv_inference_count", "Number of inferences performed (does not include cached requests)", "success")
        counter("nv_inference_exec_count", "Number of model executions performed (does not include cached requests)",
                "success")
        counter("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds "
                "(includes cached requests)", "request_us")
        counter("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds "
                "(includes cached requests)", "queue_us")
        counter("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds "
                "(does not include cached requests)", "compute_us")
        L += ["# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting "
              "execution per-model.", "# TYPE nv_inference_pending_request_count gauge"]
        for (m, v), pending in zip(models, [[0, 4, 1, 6][i], [0, 0, 0, 1][i]]):
            L.append(series("nv_inference_pending_request_count", [("model", m), ("version", v)], pending, fmt))
        llm = models[0]
        name = "nv_inference_first_response_histogram_ms"
        L += [f"# HELP {name} Duration from request to first response in milliseconds",
              f"# TYPE {name} histogram"]
        L += histogram_lines(name, [("model", llm[0]), ("version", llm[1])], e.hists["time_to_first_token"], 1000, fmt)
        if trtllm:
            # UNVERIFIED: the TensorRT-LLM backend's families and label values are not in the reference.
            L += ["# HELP nv_trt_llm_request_metrics TRT LLM request metrics",
                  "# TYPE nv_trt_llm_request_metrics gauge"]
            for rtype, values in [("context", [0, 2, 1, 3]), ("scheduled", [0, 9, 4, 14]), ("max", [64] * 4),
                                  ("active", [0, 9, 4, 14]), ("waiting", [0, 5, 2, 7])]:
                L.append(series("nv_trt_llm_request_metrics",
                                [("model", llm[0]), ("request_type", rtype), ("version", llm[1])], values[i], fmt))
            L += ["# HELP nv_trt_llm_kv_cache_block_metrics TRT LLM KV cache block metrics",
                  "# TYPE nv_trt_llm_kv_cache_block_metrics gauge"]
            used = [0, 1536, 640, 3584][i]
            for btype, value in [("max", 4096), ("free", 4096 - used), ("used", used), ("tokens_per", 64),
                                 ("fraction", used / 4096)]:
                L.append(series("nv_trt_llm_kv_cache_block_metrics",
                                [("kv_cache_block_type", btype), ("model", llm[0]), ("version", llm[1])], value, fmt))
        L += ["# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)", "# TYPE nv_gpu_utilization gauge",
              'nv_gpu_utilization{gpu_uuid="GPU-5d3c7e14-9a2b-4f61-8c0d-2e7b1a9f3c46"} 0.91']
        files.append("\n".join(L) + "\n")
    write("triton-trtllm" if trtllm else "triton", files, e.observations)


def vllm_restart():
    """A vLLM server that restarts between t1 and t2: every counter and bucket starts again from zero. Observation
    index 2 is what it saw between the restart and t2; index 3 between t2 and t3."""
    model = "meta-llama/Llama-3.1-8B-Instruct"
    rng = random.Random(53)
    hist = Histogram(VLLM_E2E)
    for _ in range(300):  # history before t0
        hist.observe(draw(rng, "request_duration", VLLM_E2E))
    observations, files = [], []
    success = 300.0
    for i, n in enumerate([0, 30, 12, 20]):
        if i == 2:
            hist, success = Histogram(VLLM_E2E), 0.0  # the restart
        for _ in range(n):
            v = draw(rng, "request_duration", VLLM_E2E)
            hist.observe(v)
            observations.append((i, "request_duration", v))
        success += n
        lab = [("engine", "0"), ("model_name", model)]
        L = ["# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
             "# TYPE vllm:num_requests_waiting gauge", series("vllm:num_requests_waiting", lab, [1, 4, 0, 2][i], pyfmt),
             "# HELP vllm:request_success_total Count of successfully processed requests.",
             "# TYPE vllm:request_success_total counter",
             series("vllm:request_success_total", lab + [("finished_reason", "stop")], success, pyfmt),
             "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.",
             "# TYPE vllm:e2e_request_latency_seconds histogram"]
        L += histogram_lines("vllm:e2e_request_latency_seconds", lab, hist, 1, pyfmt)
        files.append("\n".join(L) + "\n")
    write("vllm-restart", files, observations)


if __name__ == "__main__":
    vllm()
    sglang()
    tgi()
    triton(False)
    triton(True)
    vllm_restart()
