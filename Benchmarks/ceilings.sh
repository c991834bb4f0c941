#!/usr/bin/env bash
# Resource ceilings (issue 15): peak RSS of release builds on the worst cases the benchmarks can build here, against
# the memory limits the manifests set. Exits non-zero when a peak is over its limit.
#
# exporter  One node with 64 NVIDIA GPUs (the fake NVML, built here with plain cc, with a 64-device description
#           made from Tests/Fixtures/nvml/h100x8.nvml; the exporter's real dlopen and sampling path), one model
#           server on loopback exposing 100k vLLM-style series over 1,000 served models (Benchmarks/support/
#           model-server.py; the exporter refuses it whole as too_large and must report it down, not keep it),
#           and 600 slow clients from 127.0.0.1 trickling header bytes (Benchmarks/support/slow-clients.py).
#           Meanwhile /metrics is scraped from 127.0.0.2 once a second and must keep answering.
#           Limit: 64Mi, deploy/base/daemonset.yaml (deploy/nvidia raises it to 128Mi for libnvidia-ml's own pages;
#           the fake NVML has none of those, so the base limit is the one checked).
# adapter   The adapter scraping 1,000 simulated exporters (accel-simulator fleet, --exporters.targets as
#           Benchmarks/adapter-fleet.sh runs it) while they flap: every FLAP_PERIOD seconds another FLAP_FRACTION of
#           them answer 503 and close the connection, and every pod's value changes each second. All 10,000 pods
#           are read through pods/*/gpu_utilization once a second. Limit: 512Mi, deploy/adapter/deployment.yaml.
#
# Peak RSS is the kernel's high-water mark (VmHWM in /proc/PID/status) at the end of each phase; the largest
# VmRSS sample (every 0.2 s) is printed beside it. Loopback only; every phase has a time limit; every process
# started here is stopped on exit; the work directory is removed.
#
# Usage: Benchmarks/ceilings.sh [exporter|adapter|all]          (default: all)
# Environment: EXPORTER_SECONDS (default 60), ADAPTER_SECONDS (default 120), GPUS (default 64, at most 64),
#              SERIES (default 100000), SLOW_CLIENTS (default 600), EXPORTERS (default 1000),
#              FLAP_PERIOD (seconds, default 10), FLAP_FRACTION (default 0.1),
#              EXPORTER_LIMIT_MIB (default 64), ADAPTER_LIMIT_MIB (default 512),
#              AE_PORT (19461), FLEET_PORT (19962), ADAPTER_PORT (19963),
#              SKIP_BUILD=1 to reuse the binaries in .build-bench/release, KEEP_WORK=1 to keep the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=ceilings
source Benchmarks/support/common.sh

WHAT=${1:-all}
case $WHAT in exporter | adapter | all) ;; *) echo "usage: $0 [exporter|adapter|all]" >&2; exit 2 ;; esac
EXPORTER_SECONDS=${EXPORTER_SECONDS:-60}
ADAPTER_SECONDS=${ADAPTER_SECONDS:-120}
GPUS=${GPUS:-64}
SERIES=${SERIES:-100000}
SLOW_CLIENTS=${SLOW_CLIENTS:-600}
EXPORTERS=${EXPORTERS:-1000}
FLAP_PERIOD=${FLAP_PERIOD:-10}
FLAP_FRACTION=${FLAP_FRACTION:-0.1}
EXPORTER_LIMIT_MIB=${EXPORTER_LIMIT_MIB:-64}
ADAPTER_LIMIT_MIB=${ADAPTER_LIMIT_MIB:-512}
AE_PORT=${AE_PORT:-19461}
FLEET_PORT=${FLEET_PORT:-19962}
ADAPTER_PORT=${ADAPTER_PORT:-19963}
(( GPUS >= 1 && GPUS <= 64 )) || { echo "ceilings: GPUS must be 1 to 64 (the fake NVML's bound)" >&2; exit 2; }

# --- What this needs, by Debian package name --------------------------------------------------------------------
need_command curl curl
need_command python3 python3
need_command cc gcc
need_command timeout coreutils
require_needed

make_work_dir
pids=()
cleanup() {
  # Only the processes this script started, by id.
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  finish_work_dir
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Release binaries, as shipped: static Swift stdlib --------------------------------------------------------------
products=()
[[ $WHAT != adapter ]] && products+=(accel-exporter)
[[ $WHAT != exporter ]] && products+=(accel-metrics-adapter accel-simulator)
build_release "${products[@]}"

mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
sample_rss() {  # pid out-file: the largest VmRSS (KiB), every 0.2 s while the process lives and no stop file exists
  local top=0 now
  while [[ ! -e $2.stop ]] && kill -0 "$1" 2>/dev/null; do
    now=$(vm_kib "$1" VmRSS); [[ -n $now ]] && (( now > top )) && top=$now
    echo "$top" > "$2"
    sleep 0.2
  done
}
metric() {  # url name -> the first sample's value
  curl -s --max-time 5 "$1" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {print $NF; exit}'
}
results=()   # markdown rows
failed=0

# --- Exporter: 64 GPUs, a 100k-series model server, 600 slow clients ----------------------------------------------------
exporter_phase() {
  port_free "$AE_PORT" || { echo "ceilings: 127.0.0.1:$AE_PORT is in use; set AE_PORT" >&2; exit 1; }
  echo "exporter: $GPUS GPUs, $SERIES-series model server, $SLOW_CLIENTS slow clients, ${EXPORTER_SECONDS}s..." >&2
  # The fake NVML as docs/performance.md's 8-GPU figure built it: plain cc, so no second Swift runtime comes into the process.
  timeout 120 cc -shared -fPIC -O2 -o "$work/libFakeNVML.so" Sources/FakeNVML/fake_nvml.c -lpthread
  # GPUS devices: the 8 H100s of h100x8.nvml again and again, each copy with its own UUIDs, serials and PCI domain.
  timeout 30 python3 - "$GPUS" Tests/Fixtures/nvml/h100x8.nvml > "$work/node.nvml" <<'PY'
import sys
count, path = int(sys.argv[1]), sys.argv[2]
header, blocks, current = [], [], None
for line in open(path):
    if line.strip() == "device":
        current = [line]
        blocks.append(current)
    elif current is None:
        header.append(line)
    else:
        current.append(line)
out = list(header)
for n in range(count):
    for line in blocks[n % len(blocks)]:
        key = line.split(" ", 1)[0]
        if key == "uuid":
            line = f"uuid GPU-{n:08x}-0000-4000-8000-0000000000{n:02x}\n"
        elif key == "serial":
            line = f"serial 16549220{n:05d}\n"
        elif key == "pci":
            line = f"pci {n // 8:08X}:{line.split(':', 1)[1]}"
        out.append(line)
sys.stdout.write("".join(out))
PY
  [[ $(grep -c '^device' "$work/node.nvml") == "$GPUS" ]] || { echo "ceilings: the NVML description is wrong" >&2; exit 1; }

  python3 Benchmarks/support/model-server.py --series "$SERIES" > "$work/model-server.out" 2>&1 &
  pids+=($!)
  local ms_port=
  for _ in $(seq 300); do ms_port=$(head -1 "$work/model-server.out" 2>/dev/null | grep -E '^[0-9]+$' || true); [[ -n $ms_port ]] && break; sleep 0.1; done
  [[ -n $ms_port ]] || { echo "ceilings: the model server did not start in 30 s" >&2; cat "$work/model-server.out" >&2; exit 1; }
  local model_series
  for _ in $(seq 100); do grep -q 'series' "$work/model-server.out" && break; sleep 0.1; done
  model_series=$(sed -n 's/^model-server: \([0-9]*\) series, \([0-9]*\) bytes$/\1 series, \2 bytes/p' "$work/model-server.out")

  FAKE_NVML_CONFIG="$work/node.nvml" "$BIN/accel-exporter" --web.listen-address=127.0.0.1:"$AE_PORT" \
    --nvml.library "$work/libFakeNVML.so" --no-collector.amdgpu --no-collector.hwmon --no-collector.intel \
    --no-collector.habana --no-collector.tpu --no-collector.kubelet --no-kubernetes.watch-pods --no-inference.discovery \
    --inference.targets "ml/vllm-0=http://127.0.0.1:$ms_port/metrics" --log.level=warn > "$work/exporter.log" 2>&1 &
  local exporter=$!
  pids+=($exporter)
  local url="http://127.0.0.1:$AE_PORT/metrics"
  for _ in $(seq 150); do curl -sf --max-time 2 --interface 127.0.0.2 -o /dev/null "$url" && break; sleep 0.1; done
  curl -sf --max-time 5 --interface 127.0.0.2 -o /dev/null "$url" || {
    echo "ceilings: the exporter did not answer within 15 s; its log:" >&2; tail -20 "$work/exporter.log" >&2; exit 1; }
  sample_rss "$exporter" "$work/exporter.rss" &
  pids+=($!)

  python3 Benchmarks/support/slow-clients.py --port "$AE_PORT" --source 127.0.0.1 --connections "$SLOW_CLIENTS" \
    > "$work/slow-clients.json" 2> "$work/slow-clients.log" &
  local slow=$!
  pids+=($slow)

  # One scrape a second from another address, for EXPORTER_SECONDS: each must answer 200 within 2 s.
  local scrapes=0 failures=0 slowest=0 ms
  local deadline=$((SECONDS + EXPORTER_SECONDS))
  while (( SECONDS < deadline )); do
    local started
    started=$(date +%s%3N)
    if curl -sf --max-time 2 --interface 127.0.0.2 -o "$work/exporter.prom" "$url"; then :; else failures=$((failures + 1)); fi
    ms=$(( $(date +%s%3N) - started )); (( ms > slowest )) && slowest=$ms
    scrapes=$((scrapes + 1))
    sleep 1
  done
  kill "$slow" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$slow" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$exporter" 2>/dev/null || { echo "ceilings: the exporter exited during the run; its log:" >&2; tail -20 "$work/exporter.log" >&2; exit 1; }
  curl -sf --max-time 5 --interface 127.0.0.2 -o "$work/exporter.prom" "$url" || true
  touch "$work/exporter.rss.stop"
  local hwm rss gpus down threads
  hwm=$(vm_kib "$exporter" VmHWM); hwm=${hwm:-0}; rss=$(cat "$work/exporter.rss" 2>/dev/null || echo 0)
  threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$exporter/status")
  gpus=$(grep -c '^accelerator_up{.* 1$' "$work/exporter.prom" || true)
  down=$(grep '^accel_exporter_inference_target_down_reason{' "$work/exporter.prom" | grep -o 'reason="[^"]*"' | paste -sd ' ' || true)
  local verdict="under"
  if (( hwm > EXPORTER_LIMIT_MIB * 1024 )); then verdict="**OVER**"; failed=1; fi
  results+=("| exporter: $gpus GPUs up, model server ${model_series:-?} (down: ${down:-not reported}), $SLOW_CLIENTS slow clients, ${EXPORTER_SECONDS} s | $(mib "$hwm") MiB | $(mib "$rss") MiB | ${EXPORTER_LIMIT_MIB} MiB | $verdict |")
  echo "exporter: $scrapes scrapes from 127.0.0.2, $failures failed, slowest ${slowest} ms; $threads threads;" \
    "slow clients: $(cat "$work/slow-clients.json" 2>/dev/null || echo '?')" >&2
  [[ -n $down ]] || { echo "ceilings: the model server was not reported down with a reason" >&2; failed=1; }
  (( failures == 0 )) || { echo "ceilings: $failures scrapes from 127.0.0.2 failed under the slow clients" >&2; failed=1; }
  (( gpus == GPUS )) || { echo "ceilings: $gpus GPUs up, expected $GPUS" >&2; failed=1; }
  exporter_note="$scrapes scrapes from 127.0.0.2, $failures failed, slowest ${slowest} ms"
  kill "$exporter" 2>/dev/null || true
}

# --- Adapter: 1,000 flapping exporters ------------------------------------------------------------------------------
adapter_phase() {
  for port in "$FLEET_PORT" "$ADAPTER_PORT"; do
    port_free "$port" || { echo "ceilings: 127.0.0.1:$port is in use; set FLEET_PORT/ADAPTER_PORT" >&2; exit 1; }
  done
  echo "adapter: $EXPORTERS exporters flapping (${FLAP_FRACTION} down, new set every ${FLAP_PERIOD}s), ${ADAPTER_SECONDS}s..." >&2
  "$BIN/accel-simulator" fleet --exporters "$EXPORTERS" --port "$FLEET_PORT" --flap-period "$FLAP_PERIOD" \
    --flap-fraction "$FLAP_FRACTION" --vary > "$work/fleet.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^fleet:' "$work/fleet.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^fleet:' "$work/fleet.log" || { echo "ceilings: the fleet did not start in 10 s" >&2; cat "$work/fleet.log" >&2; exit 1; }
  local targets
  targets=$(for i in $(seq 1 "$EXPORTERS"); do printf '127.0.%d.%d:%d,' $((i >> 8)) $((i & 255)) "$FLEET_PORT"; done)
  "$BIN/accel-metrics-adapter" --secure-port 0 --insecure-port "$ADAPTER_PORT" --bind-address 127.0.0.1 \
    --exporters.targets "${targets%,}" --log.level error > "$work/adapter.log" 2>&1 &
  local adapter=$!
  pids+=($adapter)
  local base="http://127.0.0.1:$ADAPTER_PORT"
  for _ in $(seq 300); do
    [[ "$(metric "$base/metrics" accel_metrics_adapter_store_targets)" -ge $((EXPORTERS * 8 / 10)) ]] 2>/dev/null && break
    sleep 0.1
  done
  sample_rss "$adapter" "$work/adapter.rss" &
  pids+=($!)
  # All pods, once a second (the heaviest read: JSON for every pod of the fleet).
  local reads=0 failures=0 items=0 most=0 fewest=999999
  local url="$base/apis/custom.metrics.k8s.io/v1beta2/namespaces/fleet/pods/%2A/gpu_utilization"
  local deadline=$((SECONDS + ADAPTER_SECONDS))
  while (( SECONDS < deadline )); do
    if curl -sf --max-time 10 -o "$work/pods.json" "$url"; then
      items=$(grep -o '"describedObject"' "$work/pods.json" | wc -l)
      (( items > most )) && most=$items; (( items < fewest )) && fewest=$items
    else
      failures=$((failures + 1))
    fi
    reads=$((reads + 1))
    sleep 1
  done
  kill -0 "$adapter" 2>/dev/null || { echo "ceilings: the adapter exited during the run; its log:" >&2; tail -20 "$work/adapter.log" >&2; exit 1; }
  curl -s --max-time 5 -o "$work/adapter.prom" "$base/metrics" || true
  touch "$work/adapter.rss.stop"
  local hwm rss up down errors
  hwm=$(vm_kib "$adapter" VmHWM); hwm=${hwm:-0}; rss=$(cat "$work/adapter.rss" 2>/dev/null || echo 0)
  up=$(awk '$1 == "accel_metrics_adapter_targets{state=\"up\"}" {print $2}' "$work/adapter.prom")
  down=$(awk '$1 == "accel_metrics_adapter_targets{state=\"down\"}" {print $2}' "$work/adapter.prom")
  errors=$(grep '^accel_metrics_adapter_scrapes_total{' "$work/adapter.prom" | sed 's/^accel_metrics_adapter_scrapes_total{result="\([^"]*\)"} /\1=/' | paste -sd ' ' || true)
  local verdict="under"
  if (( hwm > ADAPTER_LIMIT_MIB * 1024 )); then verdict="**OVER**"; failed=1; fi
  results+=("| adapter: $EXPORTERS exporters, ${FLAP_FRACTION} of them down in turns every ${FLAP_PERIOD} s, all pods read once a second, ${ADAPTER_SECONDS} s | $(mib "$hwm") MiB | $(mib "$rss") MiB | ${ADAPTER_LIMIT_MIB} MiB | $verdict |")
  echo "adapter: $reads reads of every pod, $failures failed, $fewest to $most pods per answer; targets at the end: up ${up:-?}, down ${down:-?}; scrapes: ${errors:-?}" >&2
  adapter_note="$reads reads of every pod ($fewest to $most pods an answer), $failures failed; targets at the end up ${up:-?} / down ${down:-?}; scrapes ${errors:-?}"
  (( failures == 0 )) || failed=1
  kill "$adapter" 2>/dev/null || true
}

exporter_note= adapter_note=
[[ $WHAT != adapter ]] && exporter_phase
[[ $WHAT != exporter ]] && adapter_phase

echo
echo "Resource ceilings, release builds (static Swift stdlib); $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d);"
echo "load average at the end (1, 5, 15 min; other work on the machine counts too): $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| case | peak RSS (VmHWM) | largest VmRSS sample | limit | |"
echo "|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo
[[ -n $exporter_note ]] && echo "- exporter: $exporter_note."
[[ -n $adapter_note ]] && echo "- adapter: $adapter_note."
exit "$failed"
