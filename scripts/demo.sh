#!/usr/bin/env bash
# `make run`: the whole loop on one machine with no GPU and no cluster. A simulated node, accel-exporter on it, and
# accel-metrics-adapter beside it, fed straight from the exporter, answering what an HPA would ask.
#
#   accel-simulator ─► accel-exporter :PORT ─► accel-metrics-adapter 127.0.0.1:ADAPTER_PORT (custom.metrics.k8s.io)
#                         ▲ pod attribution        ▲ pod labels (the HPA's labelSelector)
#                   fake kubelet (unix socket)   fake API server (loopback)
#
# Default: 8 MI300X-class GPUs under umockdev. umockdev gives the real binary a fake /sys (and libsensors reads it
# unchanged); accel-simulator rewrites the testbed's files every second so readings move. Same code paths as on a
# real node: sysfs reads, gpu_metrics parsing, libsensors, the sampler, the renderer and libmicrohttpd.
# DEMO=nvidia: 8 H100s through the fake NVML (Sources/FakeNVML), loaded by the exporter's real dlopen path, with
# values that change on every sample (Tests/Fixtures/nvml/vary.nvml).
#
# Each GPU is held by one pod, demo/demo-gpu-N (label app=demo): a fake kubelet (Benchmarks/support/fake-kubelet.py,
# Debian python3-grpcio) answers the exporter's pod-resources List with them, and scripts/fake-apiserver.py serves
# them to the adapter's pod watch. The adapter serves plain HTTP on loopback only, without authentication
# (--insecure-port, for local development); in a cluster it serves HTTPS behind the API server (docs/adapter.md).
# Arguments go to the exporter.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug}
PORT=${PORT:-9445}
ADAPTER_PORT=${ADAPTER_PORT:-9446}
NAMESPACE=demo
NODE=demo-node
PYTHON=/usr/bin/python3   # Debian's, which python3-grpcio installs into

work=$(mktemp -d --suffix=.accel-demo)
pids=()
stop() {
  trap - EXIT INT TERM
  local pid
  [[ -s $work/inner.pid ]] && kill -TERM "$(cat "$work/inner.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "demo: $1" >&2
  for log in "$work"/*.log; do [[ -s $log ]] && { echo "--- ${log##*/}:" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

# Waits until `curl URL` answers, or fails after 60 s naming what.
await() {
  local what=$1 url=$2 i
  for ((i = 0; i < 600; i++)); do
    curl -sf -o /dev/null "$url" && return 0
    sleep 0.1
  done
  fail "$what did not answer at $url within 60 s"
}

# 1. The exporter, with pod attribution from the fake kubelet's socket (the directory must exist at start; the
#    kubelet client retries until the socket answers).
mkdir -p "$work/kubelet"
exporter_args=(--web.listen-address ":$PORT" --web.adapter-url "http://127.0.0.1:$ADAPTER_PORT"
  --kubernetes.node-name "$NODE" --kubelet.pod-resources-socket "$work/kubelet/kubelet.sock"
  --kubelet.refresh-interval 1s --no-kubernetes.watch-pods)
if [[ ${DEMO:-amd} == nvidia ]]; then
  title="8 H100 GPUs (fake NVML), readings moving every sample"
  resource=nvidia.com/gpu id_label=accelerator   # NVIDIA's device plugin names GPUs by UUID
  try_metrics="curl -s localhost:$PORT/metrics | grep -E 'accelerator_(utilization_ratio|power_watts)'"
  FAKE_NVML_CONFIG=$PWD/Tests/Fixtures/nvml/vary.nvml "$BIN/accel-exporter" "${exporter_args[@]}" \
    --nvml.library "$BIN/libFakeNVML.so" --no-collector.amdgpu --no-collector.hwmon "$@" >"$work/exporter.log" 2>&1 &
  pids+=($!)
else
  title="8 MI300X-class GPUs (umockdev), readings moving every second"
  resource=amd.com/gpu id_label=pci_bus_id   # AMD's device plugin names GPUs by PCI address
  try_metrics="curl -s localhost:$PORT/metrics | grep accelerator_utilization_ratio"
  "$BIN/accel-simulator" describe mi300x-8 >"$work/mi300x-8.umockdev"
  # The simulator and the exporter share the testbed. The inner shell writes its pid first: TERM to it stops both
  # (stop() sends it before umockdev-run's own).
  DEMO_INNER_PID=$work/inner.pid umockdev-run -d "$work/mi300x-8.umockdev" -- bash -c '
    echo $$ >"$DEMO_INNER_PID"
    "$0/accel-simulator" animate --node mi300x-8 --interval 1 & sim=$!
    "$0/accel-exporter" --collector.hwmon.all "$@" & exp=$!
    trap "kill -TERM $exp $sim 2>/dev/null; wait $exp; exit 0" TERM INT
    wait $exp
    kill -TERM $sim 2>/dev/null
  ' "$BIN" "${exporter_args[@]}" "$@" >"$work/exporter.log" 2>&1 &
  pids+=($!)
fi
await accel-exporter "http://127.0.0.1:$PORT/readyz"

# 2. One pod per GPU, named by the ids the node's device plugin would use.
ids=$(curl -s "http://127.0.0.1:$PORT/metrics" | grep '^accelerator_info{' \
  | grep -o "[{,]$id_label=\"[^\"]*\"" | cut -d'"' -f2 | paste -sd, -)
[[ -n $ids ]] || fail "the exporter lists no accelerator"
"$PYTHON" Benchmarks/support/fake-kubelet.py --socket "$work/kubelet/kubelet.sock" --devices "$ids" \
  --namespace "$NAMESPACE" --pod-prefix demo-gpu --resource "$resource" >"$work/kubelet.log" 2>&1 &
pids+=($!)
"$PYTHON" Benchmarks/support/pod-seed.py --devices "$ids" --namespace "$NAMESPACE" --pod-prefix demo-gpu --node "$NODE" \
  --app demo >"$work/seed.json"

# 3. The fake API server (it prints its port first) and the adapter's kubeconfig for it.
"$PYTHON" scripts/fake-apiserver.py --seed "$work/seed.json" >"$work/apiserver.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do
  api_port=$(head -n1 "$work/apiserver.log" 2>/dev/null | grep -x '[0-9]*' || true)
  [[ -n $api_port ]] && break
  sleep 0.1
done
[[ -n ${api_port:-} ]] || fail "the fake API server did not start"
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: demo
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$api_port"}}]
users: [{name: adapter, user: {token: demo-token}}]
contexts: [{name: demo, context: {cluster: fake, user: adapter, namespace: accel-metrics}}]
YAML

# 4. The adapter, scraping the exporter directly every second.
"$BIN/accel-metrics-adapter" --secure-port 0 --insecure-port "$ADAPTER_PORT" --bind-address 127.0.0.1 \
  --kubeconfig "$work/kubeconfig" --exporters.targets "127.0.0.1:$PORT" >"$work/adapter.log" 2>&1 &
pids+=($!)
await accel-metrics-adapter "http://127.0.0.1:$ADAPTER_PORT/healthz"

api="localhost:$ADAPTER_PORT/apis/custom.metrics.k8s.io/v1beta2"
cat <<MSG
A simulated node with $title: exporter, adapter, HPA view.
  exporter   open  http://localhost:$PORT/   (devices, charts, and links to the adapter)
             try   $try_metrics
  adapter    what an HPA on gpu_utilization reads, per pod (its Deployment's selector) and per node:
             curl -s '$api/namespaces/$NAMESPACE/pods/*/gpu_utilization?labelSelector=app%3Ddemo'
             curl -s '$api/nodes/$NODE/gpu_utilization'
             curl -s localhost:$ADAPTER_PORT/apis/custom.metrics.k8s.io/v1beta2 | grep -o '"name":"[^"]*"'
  pods       $NAMESPACE/demo-gpu-0 … each holding one GPU (fake kubelet; fake API server for their labels)
Logs in $work. Ctrl-C stops everything.
MSG

# Runs until Ctrl-C, or until one of the programs exits. Each exits 0 (or dies of the signal) when stopped by one:
# Ctrl-C and `timeout` signal the whole process group, and a program may go before this shell's trap runs.
set +e
wait -n "${pids[@]}"
status=$?
((status == 0 || status > 128)) && exit 0
fail "a demo process exited with status $status"
