#!/usr/bin/env bash
# swift-otel or generated messages for the OTLP push (issue 18), measured side by side with two small probe packages
# in Benchmarks/otlp-choice/{swift-otel,generated}-probe that do the same job: every second, the 8-GPU H100 node's values (parsed once from
# Tests/Fixtures/golden/nvml-h100x8.prom) pushed over OTLP/HTTP to scripts/otlp-receiver.py.
#   swift-otel: swift-otel 1.6.0's swift-metrics backend (trait OTLPHTTP only), one Gauge/FloatingPointCounter per
#               series, exported every second (it sends bodies uncompressed: 1.6.0's OTLP/HTTP exporter has no gzip).
#   generated:  the exporter's OTLPExport (MetricsRequestBuilder + OTLPPusher, interval 1 s) over the messages in
#               Sources/OTLPProto; gzip as the exporter's default, and once more with --no-gzip.
# Each probe also runs --idle (the same binary and ticks, nothing pushed), so pushing minus idle is the push's cost.
#
# 1. Cold release builds, one after the other (fresh scratch folder in the work directory, static Swift stdlib, as
#    the exporter ships): wall, user and system seconds. Other work on the machine shares the cores; the load
#    average is printed.
# 2. All five processes at once for DURATION seconds, each pushing one to its own receiver; then VmHWM and VmRSS,
#    the pushes the receiver decoded, and the points in the last one.
#
# Loopback only; every phase has a time limit; every process started here is stopped on exit; the work directory
# (builds included) is removed.
#
# Usage: Benchmarks/otlp-choice.sh
# Environment: DURATION (seconds, default 60), SKIP_BUILD=1 with KEEP_BUILDS=DIR to reuse DIR/.build-<probe> from a
#              KEEP_WORK=1 run (no build times then), KEEP_WORK=1 to keep the work directory and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=otlp-choice
source Benchmarks/support/common.sh

DURATION=${DURATION:-60}
FIXTURE=Tests/Fixtures/golden/nvml-h100x8.prom
PROBES=(swift-otel generated)

need_command timeout coreutils
need_command python3 python3
require_needed
need_otlp_receiver

make_work_dir
pids=()
made_resolved=()
cleanup() {
  # Only the processes this script started, by id: the probes and the receivers.
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # SwiftPM writes Package.resolved beside each probe's manifest; remove the ones this run made.
  rm -f "${made_resolved[@]}"
  finish_work_dir
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Cold release builds ----------------------------------------------------------------------------------------
declare -A wall user sys bin size
for probe in "${PROBES[@]}"; do
  dir=Benchmarks/otlp-choice/$probe-probe
  scratch=${KEEP_BUILDS:-$work}/.build-$probe
  bin[$probe]=$scratch/release/otlp-choice-$probe
  if [[ ${SKIP_BUILD:-0} == 1 ]]; then
    wall[$probe]=-; user[$probe]=-; sys[$probe]=-
  else
    [[ -e $dir/Package.resolved ]] || made_resolved+=("$dir/Package.resolved")
    echo "otlp-choice: cold release build of the $probe probe (load average $(cut -d' ' -f1-3 /proc/loadavg))..." >&2
    TIMEFORMAT='%R %U %S'
    # A private temp folder: other builds' clean-ups on this machine remove empty TemporaryDirectory.* folders in /tmp,
    # which races SwiftPM's manifest links.
    mkdir -p "$work/tmp"
    { time TMPDIR=$work/tmp timeout 3600 swift build -c release --static-swift-stdlib --package-path "$dir" --scratch-path "$scratch" \
        --product "otlp-choice-$probe" > "$work/build-$probe.log" 2>&1; } 2> "$work/time-$probe" || {
      echo "otlp-choice: the $probe probe did not build; the end of its log:" >&2; tail -30 "$work/build-$probe.log" >&2; exit 1; }
    read -r wall[$probe] user[$probe] sys[$probe] < "$work/time-$probe"
    echo "otlp-choice: $probe built in ${wall[$probe]} s (user ${user[$probe]} s, system ${sys[$probe]} s)" >&2
  fi
  [[ -x ${bin[$probe]} ]] || { echo "otlp-choice: ${bin[$probe]} was not built" >&2; exit 1; }
  size[$probe]=$(stat -c %s "${bin[$probe]}")
done

# --- 2. Five runs at once --------------------------------------------------------------------------------------------
# name, probe, arguments (a run without --idle gets its own receiver).
runs=("swift-otel-idle swift-otel --idle" "swift-otel-push swift-otel" "generated-idle generated --idle"
      "generated-push generated" "generated-push-plain generated --no-gzip")
declare -A pid_of
for run in "${runs[@]}"; do
  read -r name probe args <<< "$run"
  endpoint=
  if [[ $args != *--idle* ]]; then
    timeout --kill-after=5 $((DURATION + 120)) python3 scripts/otlp-receiver.py --out "$work/$name.jsonl" --port 0 \
      > "$work/$name.receiver" 2>&1 &
    pids+=($!)
    port=
    for _ in $(seq 100); do port=$(sed -n 's/^http \([0-9]*\)$/\1/p' "$work/$name.receiver"); [[ -n $port ]] && break; sleep 0.1; done
    [[ -n $port ]] || { echo "otlp-choice: the receiver for $name did not start" >&2; cat "$work/$name.receiver" >&2; exit 1; }
    endpoint="--endpoint http://127.0.0.1:$port"
  fi
  # shellcheck disable=SC2086
  # Not under timeout: $! must be the probe itself, whose /proc status is read (the EXIT trap stops it).
  SWIFT_BACKTRACE=enable=no "${bin[$probe]}" --fixture "$FIXTURE" $endpoint $args \
    > "$work/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
done
echo "otlp-choice: five probes running for ${DURATION} s..." >&2
sleep "$DURATION"

declare -A hwm rss
for run in "${runs[@]}"; do
  read -r name _ <<< "$run"
  kill -0 "${pid_of[$name]}" 2>/dev/null || { echo "otlp-choice: $name exited early; its log:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
  hwm[$name]=$(vm_kib "${pid_of[$name]}" VmHWM)
  rss[$name]=$(vm_kib "${pid_of[$name]}" VmRSS)
done
for run in "${runs[@]}"; do read -r name _ <<< "$run"; kill "${pid_of[$name]}" 2>/dev/null || true; done

# Pushes decoded, points in the last one, and the body size the receiver saw (Content-Length).
pushes() {
  python3 - "$1" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines() if sys.argv[1] else []
if not lines:
    print("0 0 0"); sys.exit()
last = json.loads(lines[-1])
points = 0
for rm in last["request"].get("resource_metrics", []):
    for sm in rm.get("scope_metrics", []):
        for m in sm.get("metrics", []):
            for kind in ("gauge", "sum", "histogram"):
                points += len(m.get(kind, {}).get("data_points", []))
headers = {k.lower(): v for k, v in last.get("headers", {}).items()}
print(len(lines), points, headers.get("content-length", "?"))
PY
}
mib() { awk -v k="$1" 'BEGIN {printf "%.2f", k / 1024}'; }

echo
echo "OTLP push, swift-otel 1.6.0 or generated messages: the 8-GPU H100 node ($(grep -vc '^#' "$FIXTURE") series of"
echo "$FIXTURE) pushed every second over OTLP/HTTP for ${DURATION} s to scripts/otlp-receiver.py; release builds with a"
echo "static Swift stdlib; $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d), $(swift --version 2>/dev/null | head -1 | sed 's/ (.*//')."
echo "Load average at the end (1, 5, 15 min; other work on the machine counts too): $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| probe | cold build: wall / user / sys s | binary | idle VmHWM / VmRSS | pushing VmHWM / VmRSS | push's VmHWM cost | pushes decoded | points / body bytes |"
echo "|---|---|---|---|---|---|---|---|"
status=0
for push in swift-otel-push generated-push generated-push-plain; do
  probe=${push%%-push*}
  idle=$probe-idle
  read -r count points bytes < <(pushes "$work/$push.jsonl" 2>/dev/null || echo "0 0 0")
  label=$probe; [[ $push == *plain ]] && label="$probe (--no-gzip)"; [[ $push == generated-push ]] && label="$probe (gzip)"
  build="${wall[$probe]} / ${user[$probe]} / ${sys[$probe]}"
  echo "| $label | $build | $(mib $((size[$probe] / 1024))) MiB | $(mib "${hwm[$idle]}") / $(mib "${rss[$idle]}") MiB | $(mib "${hwm[$push]}") / $(mib "${rss[$push]}") MiB | $(( hwm[$push] - hwm[$idle] )) KiB | $count | $points / $bytes |"
  (( count >= DURATION / 2 )) || { echo "FAIL: the receiver decoded only $count pushes from $push"; status=1; }
done
exit $status
