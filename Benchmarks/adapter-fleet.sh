#!/usr/bin/env bash
# The adapter at fleet scale, on this machine: N simulated exporters (accel-simulator fleet: one process, one
# port, a node per loopback address 127.0.x.y), each with 8 GPUs and 10 pods, scraped directly by a release build
# of accel-metrics-adapter at the default 1 s resolution. Prints, for N = 100 and 1000:
#   - how long until every exporter is in the store, and the per-exporter scrape interval reached;
#   - the adapter's RSS;
#   - the latency of pods/*/gpu_utilization over all pods of the fleet (N x 10) through real HTTP (curl, 30 runs);
#   - freshness: time from a node's reading changing to the adapter serving it (20 changes).
# Usage: Benchmarks/adapter-fleet.sh [N ...]        (SKIP_BUILD=1 reuses .build-bench/release)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=.build-bench
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  for product in accel-metrics-adapter accel-simulator; do
    scripts/build-release.sh "$product" --scratch-path "$SCRATCH" >&2
  done
fi
BIN=$SCRATCH/release
FLEET_PORT=${FLEET_PORT:-19950}
ADAPTER_PORT=${ADAPTER_PORT:-19951}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

metric() {  # name -> value from the adapter's /metrics
  curl -s "http://127.0.0.1:$ADAPTER_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
now_ms() { date +%s%3N; }

echo "| exporters | pods | all in the store after | scrape interval reached | adapter RSS | pods/*/gpu_utilization p50 / p95 | freshness p50 / p95 / max |"
echo "|---|---|---|---|---|---|---|"
for n in "${@:-100 1000}"; do
  "$BIN/accel-simulator" fleet --exporters "$n" --port "$FLEET_PORT" > /dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$FLEET_PORT/control/bump?node=x&value=0" && break; sleep 0.1; done
  targets=$(for i in $(seq 1 "$n"); do printf '127.0.%d.%d:%d,' $((i >> 8)) $((i & 255)) "$FLEET_PORT"; done)
  start=$(now_ms)
  "$BIN/accel-metrics-adapter" --secure-port 0 --insecure-port "$ADAPTER_PORT" --bind-address 127.0.0.1 \
    --exporters.targets "${targets%,}" --log.level error > /dev/null 2>&1 &
  adapter=$!
  pids+=($adapter)
  until [[ "$(metric accel_metrics_adapter_store_targets)" == "$n" ]]; do sleep 0.05; done
  filled=$(( $(now_ms) - start ))
  sleep 10   # steady state: every exporter scraped several times
  interval=$(metric accel_metrics_adapter_scrape_interval_seconds | awk '{printf "%.2f", $1}')
  rss=$(awk '/^VmRSS:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$adapter/status")
  url="http://127.0.0.1:$ADAPTER_PORT/apis/custom.metrics.k8s.io/v1beta2/namespaces/fleet/pods/%2A/gpu_utilization"
  items=$(curl -s "$url" | grep -o '"describedObject"' | wc -l)
  latencies=$(for _ in $(seq 30); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done | sort -n)
  lp50=$(echo "$latencies" | awk 'NR == 15 {printf "%.1f ms", $1 * 1000}')
  lp95=$(echo "$latencies" | awk 'NR == 29 {printf "%.1f ms", $1 * 1000}')
  # Freshness: change node-K's pods to a new value and time until the adapter serves it.
  fresh=()
  for k in $(seq 1 20); do
    node=$(( (k * 37) % n )); value="0.$((10 + k))"
    pod_url="http://127.0.0.1:$ADAPTER_PORT/apis/custom.metrics.k8s.io/v1beta2/namespaces/fleet/pods/node-$node-pod0/gpu_utilization"
    want="\"value\":\"$((10 + k))\""
    t0=$(now_ms)
    curl -s -o /dev/null "http://127.0.0.1:$FLEET_PORT/control/bump?node=node-$node&value=$value"
    until curl -s "$pod_url" | grep -q "$want"; do sleep 0.02; done
    fresh+=($(( $(now_ms) - t0 )))
  done
  sorted=$(printf '%s\n' "${fresh[@]}" | sort -n)
  fp50=$(echo "$sorted" | awk 'NR == 10'); fp95=$(echo "$sorted" | awk 'NR == 19'); fmax=$(echo "$sorted" | tail -1)
  echo "| $n | $items | ${filled} ms | ${interval} s | $rss | $lp50 / $lp95 | ${fp50} / ${fp95} / ${fmax} ms |"
  cleanup; pids=()
  sleep 1
done
echo
echo "$(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); fleet, adapter and curl share the machine."
