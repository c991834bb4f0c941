#!/usr/bin/env bash
# Adapter chaos (issue 15): a release accel-metrics-adapter, fed through EndpointSlices by simulated exporters
# (accel-simulator fleet, several processes) and one real accel-exporter whose pods come from a fake kubelet, for
# DURATION seconds (default 600) while, at random (seeded) times, exporter processes are killed and come back,
# the kubelet restarts, the API server (scripts/fake-apiserver.py) restarts, and the serving certificate files
# are replaced. The front proxy asks for pods/*/gpu_utilization every 0.5 s and every value is checked against
# what its exporter served; /readyz and /livez are polled throughout. What is checked, and how, is in the header
# of Benchmarks/support/adapter-chaos.py, which runs it all.
#
# Exits non-zero on a crash (the adapter or the real exporter exiting), a wrong value, or incorrect readiness.
# Loopback only; every phase has a time limit; every process started here is stopped on exit; the work directory
# (certificates from scripts/test-pki.sh, logs) is removed.
#
# Usage: Benchmarks/adapter-chaos.sh
# Environment: DURATION (seconds, default 600), EXPORTERS (simulated, default 400), FLEETS (fleet processes,
#              default 4), FLAP_PERIOD (default 15), FLAP_FRACTION (default 0.05), SEED (default 1),
#              PORT_BASE (default 19971: API server, adapter, real exporter, then one port per fleet process),
#              SKIP_BUILD=1 to reuse .build-bench/release, KEEP_WORK=1 to keep the work directory (logs).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=adapter-chaos
source Benchmarks/support/common.sh

DURATION=${DURATION:-600}
EXPORTERS=${EXPORTERS:-400}
FLEETS=${FLEETS:-4}
FLAP_PERIOD=${FLAP_PERIOD:-15}
FLAP_FRACTION=${FLAP_FRACTION:-0.05}
SEED=${SEED:-1}
PORT_BASE=${PORT_BASE:-19971}

# --- What this needs, by Debian package name --------------------------------------------------------------------
[[ -x /usr/bin/python3 ]] || bench_missing+=(python3)
need_python_module grpc python3-grpcio
need_command openssl openssl
need_command cc gcc
need_command timeout coreutils
require_needed

make_work_dir
runner=
cleanup() {
  # The runner stops what it started; these are the same processes by id, in case it was killed first.
  local pid
  [[ -n $runner ]] && kill "$runner" 2>/dev/null || true
  for _ in $(seq 150); do [[ -n $runner ]] && kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
  for pid in $(cat "$work"/pids/*.pid 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  finish_work_dir
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Release binaries, as shipped: static Swift stdlib --------------------------------------------------------------
products=(accel-metrics-adapter accel-simulator accel-exporter)
build_release "${products[@]}"

for port in $(seq "$PORT_BASE" $((PORT_BASE + 2 + FLEETS))); do
  port_free "$port" || { echo "adapter-chaos: 127.0.0.1:$port is in use; set PORT_BASE" >&2; exit 1; }
done

timeout 60 bash scripts/test-pki.sh "$work/pki" >&2
timeout 120 cc -shared -fPIC -O2 -o "$work/libFakeNVML.so" Sources/FakeNVML/fake_nvml.c -lpthread

echo "adapter-chaos: ${DURATION}s, $EXPORTERS simulated exporters in $FLEETS processes, seed $SEED..." >&2
timeout --kill-after=30 $((DURATION + 300)) /usr/bin/python3 Benchmarks/support/adapter-chaos.py \
  --work "$work" --bin "$BIN" --nvml-library "$work/libFakeNVML.so" --duration "$DURATION" \
  --exporters "$EXPORTERS" --groups "$FLEETS" --flap-period "$FLAP_PERIOD" --flap-fraction "$FLAP_FRACTION" \
  --seed "$SEED" --api-port "$PORT_BASE" --adapter-port $((PORT_BASE + 1)) --exporter-port $((PORT_BASE + 2)) \
  --fleet-port $((PORT_BASE + 3)) &
runner=$!
status=0
wait "$runner" || status=$?
runner=
exit "$status"
