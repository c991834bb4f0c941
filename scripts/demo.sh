#!/usr/bin/env bash
# The README's run command: accel-exporter on a simulated 8-GPU MI300X-class node, on a machine with no GPU.
#
# umockdev gives the real binary a fake /sys (and libsensors reads it unchanged); accel-simulator rewrites the
# testbed's files every second so readings move. Same code paths as on a real node: sysfs reads, gpu_metrics
# parsing, libsensors, the sampler, the renderer and libmicrohttpd.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug}
PORT=${PORT:-9445}

# DEMO=nvidia: 8 H100s through the fake NVML (Sources/FakeNVML), loaded by the exporter's real dlopen path, with
# values that change on every sample (Tests/Fixtures/nvml/vary.nvml).
if [[ ${DEMO:-amd} == nvidia ]]; then
  cat <<MSG
accel-exporter on a simulated node with 8 H100 GPUs (fake NVML), readings moving every sample.
  open    http://localhost:$PORT/
  try     curl -s localhost:$PORT/metrics | grep -E 'accelerator_(utilization_ratio|power_watts)'
Ctrl-C stops it.
MSG
  FAKE_NVML_CONFIG=$PWD/Tests/Fixtures/nvml/vary.nvml exec "$BIN/accel-exporter" --web.listen-address ":$PORT" \
    --nvml.library "$BIN/libFakeNVML.so" --no-collector.amdgpu --no-collector.hwmon "$@"
fi
tree=$(mktemp --suffix=.umockdev)
trap 'rm -f "$tree"' EXIT
"$BIN/accel-simulator" describe mi300x-8 > "$tree"

cat <<MSG
accel-exporter on a simulated node with 8 MI300X-class GPUs (umockdev), readings moving every second.
  open    http://localhost:$PORT/
  try     curl -s localhost:$PORT/metrics | grep accelerator_utilization_ratio
          curl -s -H 'Accept: application/openmetrics-text; version=1.0.0' localhost:$PORT/metrics | tail
Ctrl-C stops it.
MSG
exec umockdev-run -d "$tree" -- bash -c '
  "$0/accel-simulator" animate --node mi300x-8 --interval 1 &
  sim=$!
  trap "kill $sim 2>/dev/null" EXIT
  "$0/accel-exporter" --web.listen-address ":$1" --collector.hwmon.all "${@:2}"
' "$BIN" "$PORT" "$@"
