#!/usr/bin/env bash
# Exporter soak (issue 15): a release accel-exporter on the simulated 8-GPU MI300X node (one umockdev testbed, as
# compare-node-exporter.sh builds it, with the readings moving every second), scraped at a fixed RATE (default
# 1,000 scrapes/s) for DURATION seconds (default 600). VmRSS is sampled every second; the mean of the first WINDOW
# seconds (default 60) is compared with the mean of the last WINDOW. Fails when the last window is more than
# TOLERANCE_KIB (default 1024) above the first, when the exporter exits, or when scrapes fail.
#
# wrk has no fixed-rate mode (wrk2 is not packaged), so the load is Benchmarks/support/paced-scrape.py: asyncio,
# kept-alive connections, request i due at start + i / RATE, latency counted from when it was due. The rate it
# reached is reported as measured; on this 2-core machine the load generator shares the cores with the exporter.
#
# Loopback only; every phase has a time limit; every process started here is stopped on exit; the work directory
# is removed.
#
# Usage: Benchmarks/exporter-soak.sh
# Environment: DURATION (seconds, default 600), RATE (scrapes/s, default 1000), CONNECTIONS (default 16),
#              WINDOW (seconds, default 60; at most DURATION / 3), TOLERANCE_KIB (default 1024),
#              AE_PORT (default 19446), SKIP_BUILD=1 to reuse .build-bench/release, KEEP_WORK=1 to keep the work
#              directory (RSS samples, load summary, logs) and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=exporter-soak
source Benchmarks/support/common.sh

DURATION=${DURATION:-600}
RATE=${RATE:-1000}
CONNECTIONS=${CONNECTIONS:-16}
WINDOW=${WINDOW:-60}
TOLERANCE_KIB=${TOLERANCE_KIB:-1024}
AE_PORT=${AE_PORT:-19446}
(( WINDOW * 3 <= DURATION )) || WINDOW=$((DURATION / 3))
(( WINDOW >= 1 )) || { echo "exporter-soak: DURATION must be at least 3 s" >&2; exit 2; }

# --- What this needs, by Debian package name --------------------------------------------------------------------
need_command umockdev-run umockdev
need_command curl curl
need_command python3 python3
need_command timeout coreutils
require_needed

make_work_dir
pids=()
testbed_pid=
cleanup() {
  # Only the processes this script started, by id: the load, the sampler, the testbed runner and what it started.
  local pid
  touch "$work/stop" 2>/dev/null || true
  for pid in "${pids[@]}" $(cat "$work"/*.pid 2>/dev/null) $testbed_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  finish_work_dir
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Release binaries, as shipped: static Swift stdlib --------------------------------------------------------------
build_release accel-exporter accel-simulator

port_free "$AE_PORT" || { echo "exporter-soak: 127.0.0.1:$AE_PORT is in use; set AE_PORT" >&2; exit 1; }
"$BIN/accel-simulator" describe mi300x-8 > "$work/tree.umockdev"

# --- Inside the testbed: the exporter and the animation, until $WORK/stop appears --------------------------------------
inner=$(cat <<'INNER'
set -euo pipefail
BIN=$1 WORK=$2 AE_PORT=$3
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -f "$WORK"/*.pid' EXIT
"$BIN/accel-exporter" --web.listen-address=127.0.0.1:"$AE_PORT" --log.level=warn > "$WORK/exporter.log" 2>&1 &
pids+=($!); echo $! > "$WORK/exporter.pid"
"$BIN/accel-simulator" animate --node mi300x-8 --interval 1 > "$WORK/animate.log" 2>&1 &
pids+=($!); echo $! > "$WORK/animate.pid"
while [[ ! -e $WORK/stop ]] && kill -0 "${pids[0]}" 2>/dev/null; do sleep 0.5; done
INNER
)
timeout --kill-after=10 $((DURATION + 300)) \
  umockdev-run -d "$work/tree.umockdev" -- bash -c "$inner" inner "$BIN" "$work" "$AE_PORT" &
testbed_pid=$!

url="http://127.0.0.1:$AE_PORT/metrics"
for _ in $(seq 150); do [[ -s $work/exporter.pid ]] && curl -sf --max-time 2 -o /dev/null "$url" && break; sleep 0.1; done
curl -sf --max-time 5 -o "$work/first.prom" "$url" || {
  echo "exporter-soak: the exporter did not answer within 15 s; its log:" >&2; tail -20 "$work/exporter.log" >&2; exit 1; }
exporter=$(cat "$work/exporter.pid")
# Past start-up: the exporter gives back start-up-only pages 10 s after start.
sleep 15

echo "exporter-soak: ${RATE} scrapes/s for ${DURATION}s over $CONNECTIONS connections; RSS every second..." >&2
(
  start=$(date +%s)
  while [[ ! -e $work/load.done ]] && kill -0 "$exporter" 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(vm_kib "$exporter" VmRSS)"
    sleep 1
  done
) > "$work/rss.txt" &
pids+=($!)
timeout --kill-after=10 $((DURATION + 60)) python3 Benchmarks/support/paced-scrape.py "$url" --rate "$RATE" \
  --seconds "$DURATION" --connections "$CONNECTIONS" > "$work/load.json" &
load=$!
pids+=($load)
wait "$load" || { echo "exporter-soak: the load generator failed" >&2; exit 1; }
touch "$work/load.done"
alive=yes
kill -0 "$exporter" 2>/dev/null || alive=no
hwm=$(vm_kib "$exporter" VmHWM || echo 0)
curl -sf --max-time 5 -o "$work/last.prom" "$url" || true

# --- Report --------------------------------------------------------------------------------------------------------
read -r first last growth samples < <(awk -v w="$WINDOW" -v d="$DURATION" '
  NF == 2 && $2 > 0 { t[NR] = $1; r[NR] = $2; n = NR }
  END {
    for (i = 1; i <= n; i++) {
      if (t[i] < w) { fs += r[i]; fc++ }
      if (t[i] >= t[n] - w) { ls += r[i]; lc++ }
    }
    f = fc ? fs / fc : 0; l = lc ? ls / lc : 0
    printf "%.0f %.0f %.0f %d\n", f, l, l - f, n
  }' "$work/rss.txt")
field() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$work/load.json" "$1"; }
slowest_second=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["per_second"][:-1]; print(min(s) if s else 0)' "$work/load.json")
echo
echo "Exporter soak: release accel-exporter on the simulated 8-GPU MI300X node (umockdev, readings moving every"
echo "second), ${DURATION} s at a target of ${RATE} scrapes/s over $CONNECTIONS kept-alive connections"
echo "(Benchmarks/support/paced-scrape.py); $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); load average at the"
echo "end (1, 5, 15 min; other work on the machine counts too): $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| | |"
echo "|---|---|"
echo "| scrapes completed (HTTP 200) | $(field ok) of $(field issued) due |"
echo "| achieved rate | $(field ok_rate) scrapes/s (slowest whole second: $slowest_second) |"
echo "| errors | status $(field status), connection $(field errors) |"
echo "| latency from due time p50 / p99 / max | $(field p50_ms) / $(field p99_ms) / $(field max_ms) ms |"
echo "| mean VmRSS, first ${WINDOW} s | $(awk -v k="$first" 'BEGIN {printf "%.2f", k / 1024}') MiB ($first KiB) |"
echo "| mean VmRSS, last ${WINDOW} s | $(awk -v k="$last" 'BEGIN {printf "%.2f", k / 1024}') MiB ($last KiB) |"
echo "| growth | $growth KiB (tolerance $TOLERANCE_KIB KiB) |"
echo "| peak RSS since start (VmHWM) | $(awk -v k="$hwm" 'BEGIN {printf "%.2f", k / 1024}') MiB |"
echo "| RSS samples | $samples |"
echo
status=0
[[ $alive == yes ]] || { echo "FAIL: the exporter exited during the soak; its log:"; tail -20 "$work/exporter.log"; status=1; }
(( growth <= TOLERANCE_KIB )) || { echo "FAIL: RSS grew by $growth KiB, over the tolerance of $TOLERANCE_KIB KiB"; status=1; }
ok=$(field ok); issued=$(field issued)
(( ok == issued )) || { echo "FAIL: $((issued - ok)) of $issued scrapes did not answer 200"; status=1; }
exit $status
