#!/usr/bin/env bash
# What the OTLP push adds to the exporter's peak RSS (issue 18: at most 2 MiB, measured side by side).
#
# Four release accel-exporters at once on the same fake-NVML node (the eight H100s of Tests/Fixtures/nvml/h100x8.nvml;
# the fake NVML built here with plain cc, the exporter's real dlopen and sampling path):
#   base-a, base-b   no --otlp.endpoint (two of them: their difference is the noise floor of the comparison)
#   otlp-1s          --otlp.endpoint to its own scripts/otlp-receiver.py, --otlp.interval 1s (stress)
#   otlp-10s         the same at the default interval, 10s
# All four are scraped the same way (every SCRAPE_INTERVAL seconds) for DURATION seconds. Then: VmHWM (the kernel's
# high-water mark since start), the mean VmRSS of the second half (sampled every second), the pushes each receiver
# decoded and the exporter's own accel_exporter_otlp_exports_total. The added peak is each OTLP exporter's VmHWM minus
# the larger of the two baselines'. Exits non-zero when it is over LIMIT_KIB or a receiver decoded too few pushes.
#
# Loopback only; every phase has a time limit; every process started here is stopped on exit; the work directory
# is removed.
#
# Usage: Benchmarks/otlp-cost.sh
# Environment: DURATION (seconds, default 120), SCRAPE_INTERVAL (seconds, default 5), LIMIT_KIB (default 2048),
#              AE_PORT (first of four ports, default 19470), SKIP_BUILD=1 to reuse .build-bench/release,
#              PROTOCOL=grpc to push OTLP/gRPC (UnaryGRPC over libcurl) instead of OTLP/HTTP (default http),
#              KEEP_WORK=1 to keep the work directory (logs, RSS samples, pushes) and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=otlp-cost
source Benchmarks/support/common.sh

DURATION=${DURATION:-120}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-5}
LIMIT_KIB=${LIMIT_KIB:-2048}
PROTOCOL=${PROTOCOL:-http}
[[ $PROTOCOL == http || $PROTOCOL == grpc ]] || { echo "otlp-cost: PROTOCOL must be http or grpc" >&2; exit 1; }
AE_PORT=${AE_PORT:-19470}

need_command curl curl
need_command cc gcc
need_command python3 python3
need_command timeout coreutils
require_needed
need_otlp_receiver

make_work_dir
pids=()
cleanup() {
  # Only the processes this script started, by id: exporters, receivers, samplers, scrapers.
  local pid
  touch "$work/stop" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  finish_work_dir
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Release binary, as shipped: static Swift stdlib; the fake NVML --------------------------------------------------
build_release accel-exporter
timeout 120 cc -shared -fPIC -O2 -o "$work/libFakeNVML.so" Sources/FakeNVML/fake_nvml.c -lpthread

names=(base-a base-b otlp-1s otlp-10s)
declare -A port pid_of
i=0
for name in "${names[@]}"; do
  port[$name]=$((AE_PORT + i)); i=$((i + 1))
  port_free "${port[$name]}" || { echo "otlp-cost: 127.0.0.1:${port[$name]} is in use; set AE_PORT" >&2; exit 1; }
done

for name in "${names[@]}"; do
  otlp=()
  if [[ $name == otlp-* ]]; then
    receiver=(--port 0)
    [[ $PROTOCOL == grpc ]] && receiver+=(--grpc-port 0)
    timeout --kill-after=5 $((DURATION + 120)) python3 scripts/otlp-receiver.py --out "$work/$name.jsonl" "${receiver[@]}" \
      > "$work/$name.receiver" 2>&1 &
    pids+=($!)
    rx=
    for _ in $(seq 100); do rx=$(sed -n "s/^$PROTOCOL \\([0-9]*\\)\$/\\1/p" "$work/$name.receiver"); [[ -n $rx ]] && break; sleep 0.1; done
    [[ -n $rx ]] || { echo "otlp-cost: the receiver for $name did not start" >&2; cat "$work/$name.receiver" >&2; exit 1; }
    otlp=(--otlp.endpoint "http://127.0.0.1:$rx" --otlp.interval "${name#otlp-}")
    [[ $PROTOCOL == grpc ]] && otlp+=(--otlp.protocol grpc)
  fi
  # Not under timeout: $! must be the exporter itself, whose /proc status is read (the EXIT trap stops it).
  FAKE_NVML_CONFIG=Tests/Fixtures/nvml/h100x8.nvml SWIFT_BACKTRACE=enable=no \
    "$BIN/accel-exporter" --web.listen-address=127.0.0.1:"${port[$name]}" \
    --nvml.library "$work/libFakeNVML.so" --no-collector.amdgpu --no-collector.hwmon --no-collector.intel \
    --no-collector.habana --no-collector.tpu --no-collector.kubelet --no-kubernetes.watch-pods --no-inference.discovery \
    --log.level=warn "${otlp[@]}" > "$work/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
done

for name in "${names[@]}"; do
  url="http://127.0.0.1:${port[$name]}/metrics"
  for _ in $(seq 150); do curl -sf --max-time 2 -o /dev/null "$url" && break; sleep 0.1; done
  curl -sf --max-time 5 -o "$work/$name.prom" "$url" || {
    echo "otlp-cost: $name did not answer within 15 s; its log:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
done
echo "otlp-cost: four exporters running for ${DURATION} s (scraped every ${SCRAPE_INTERVAL} s)..." >&2

# VmRSS every second, and the same scrapes for all four.
for name in "${names[@]}"; do
  (
    start=$SECONDS
    while [[ ! -e $work/stop ]] && kill -0 "${pid_of[$name]}" 2>/dev/null; do
      echo "$((SECONDS - start)) $(vm_kib "${pid_of[$name]}" VmRSS)"
      sleep 1
    done
  ) > "$work/$name.rss" &
  pids+=($!)
done
(
  while [[ ! -e $work/stop ]]; do
    for name in "${names[@]}"; do curl -s --max-time 5 -o /dev/null "http://127.0.0.1:${port[$name]}/metrics" || true; done
    sleep "$SCRAPE_INTERVAL"
  done
) &
pids+=($!)
sleep "$DURATION"

declare -A hwm mean pushes exports
for name in "${names[@]}"; do
  kill -0 "${pid_of[$name]}" 2>/dev/null || { echo "otlp-cost: $name exited during the run; its log:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
  hwm[$name]=$(vm_kib "${pid_of[$name]}" VmHWM)
  mean[$name]=$(awk -v half=$((DURATION / 2)) 'NF == 2 && $1 >= half && $2 > 0 {s += $2; n++} END {printf "%.0f", n ? s / n : 0}' "$work/$name.rss")
  pushes[$name]=$( [[ -e $work/$name.jsonl ]] && wc -l < "$work/$name.jsonl" || echo -)
  curl -s --max-time 5 -o "$work/$name.prom" "http://127.0.0.1:${port[$name]}/metrics" || true
  exports[$name]=$(awk '$1 == "accel_exporter_otlp_exports_total{result=\"success\"}" {print $2; exit}' "$work/$name.prom")
  exports[$name]=${exports[$name]:--}
done
touch "$work/stop"

mib() { awk -v k="$1" 'BEGIN {printf "%.2f", k / 1024}'; }
base=$(( hwm[base-a] > hwm[base-b] ? hwm[base-a] : hwm[base-b] ))
series=$(grep -vc '^#' "$work/base-a.prom" || true)
echo
echo "The OTLP push's peak RSS: four release accel-exporters side by side on the fake-NVML 8x H100 node"
echo "($series series on /metrics), ${DURATION} s, each scraped every ${SCRAPE_INTERVAL} s; OTLP/$([[ $PROTOCOL == grpc ]] && echo gRPC || echo HTTP) with gzip to"
echo "scripts/otlp-receiver.py on loopback; $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d). Load average at the end"
echo "(1, 5, 15 min; other work on the machine counts too): $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| exporter | VmHWM | mean VmRSS, last $((DURATION / 2)) s | added peak vs the larger baseline | pushes decoded | exports_total{success} |"
echo "|---|---|---|---|---|---|"
status=0
for name in "${names[@]}"; do
  added=-
  if [[ $name == otlp-* ]]; then
    added="$(( hwm[$name] - base )) KiB ($(mib $(( hwm[$name] - base ))) MiB)"
    (( hwm[$name] - base <= LIMIT_KIB )) || { status=1; added="$added **over $(mib "$LIMIT_KIB") MiB**"; }
  fi
  echo "| $name | $(mib "${hwm[$name]}") MiB (${hwm[$name]} KiB) | $(mib "${mean[$name]}") MiB | $added | ${pushes[$name]} | ${exports[$name]} |"
done
echo
echo "Noise floor (base-a vs base-b VmHWM): $(( hwm[base-a] - hwm[base-b] )) KiB."
for name in otlp-1s otlp-10s; do
  every=${name#otlp-}; every=${every%s}
  (( ${pushes[$name]} >= DURATION / every / 2 )) || { echo "FAIL: the receiver decoded only ${pushes[$name]} pushes from $name"; status=1; }
done
(( status == 0 )) || echo "FAIL: a push added more than $(mib "$LIMIT_KIB") MiB of peak RSS, or too few pushes arrived."
exit $status
