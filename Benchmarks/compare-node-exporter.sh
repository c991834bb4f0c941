#!/usr/bin/env bash
# node_exporter (drm + hwmon collectors) and accel-exporter side by side on the same simulated 8-GPU MI300X node,
# in one umockdev testbed and one run: scrapes/s and p99 latency under wrk, CPU seconds per 1000 scrapes, peak RSS,
# printed as a markdown table, with each exporter's response size and series count.
#
# Peak RSS is given twice: sampled every millisecond from each exporter's start (Benchmarks/support/peak-rss.py), and
# the kernel's VmHWM, which can read low for accel-exporter because it pages out its start-up code with MADV_PAGEOUT.
#
# Both exporters read the same testbed. accel-exporter opens the default /sys, which umockdev's LD_PRELOAD
# redirects (libsensors needs exactly that). node_exporter's Go runtime makes raw syscalls and ignores the
# preload, so it is pointed at the testbed's directory with --path.sysfs=$UMOCKDEV_DIR/sys.
#
# accel-exporter runs as it does on a cluster node, with its clients busy (CLIENTS=1, the default): the pod watch
# over HTTPS with a bearer token against scripts/fake-apiserver.py (8 pods on the node, a bookmark a minute as a real
# API server sends), the kubelet pod-resources
# client calling List every second against Benchmarks/support/fake-kubelet.py (a grpcio server giving each GPU to a
# pod), and the inference loop scraping a vLLM-style Benchmarks/support/model-server.py. The report says whether each
# was healthy during the run. CLIENTS=0 measures the exporter with only its device collectors.
#
# Loopback only; every phase has a time limit; every process started here is stopped on exit.
#
# Usage: Benchmarks/compare-node-exporter.sh
# Environment: DURATION (seconds per wrk run, default 10), CONNECTIONS (default 16), THREADS (wrk, default 2),
#              NE_PORT (default 19100), AE_PORT (default 19445),
#              GZIP=1 to send "Accept-Encoding: gzip" as Prometheus does (default: plain bodies),
#              SKIP_BUILD=1 to reuse the binaries already in .build-bench/release, BIN=DIR to measure the binaries
#              in DIR instead (another commit's build; implies SKIP_BUILD=1),
#              CLIENTS=0 to leave the pod watch, kubelet client and inference loop off (default 1),
#              KEEP_WORK=1 to keep the work directory (wrk output, scrapes, logs, each exporter's /proc/PID/smaps
#              at the end of its run) and print its path,
#              CALLGRIND_OUT=FILE to run accel-exporter under valgrind's callgrind (scripts/hot-text-order.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
NE_PORT=${NE_PORT:-19100}
AE_PORT=${AE_PORT:-19445}
GZIP=${GZIP:-0}
CLIENTS=${CLIENTS:-1}
NODE_EXPORTER=/usr/bin/prometheus-node-exporter
SCRATCH=.build-bench
if [[ -n ${BIN:-} ]]; then SKIP_BUILD=1; else BIN=$SCRATCH/release; fi
PYTHON=/usr/bin/python3   # Debian's, which python3-grpcio installs into

# --- What this needs, by Debian package name --------------------------------------------------------------------
missing=()
[[ -x $NODE_EXPORTER ]] || missing+=(prometheus-node-exporter)
command -v wrk >/dev/null || missing+=(wrk)
command -v umockdev-run >/dev/null || missing+=(umockdev)
command -v curl >/dev/null || missing+=(curl)
command -v timeout >/dev/null || missing+=(coreutils)
if [[ $CLIENTS == 1 ]]; then
  command -v openssl >/dev/null || missing+=(openssl)
  "$PYTHON" -c 'import grpc' 2>/dev/null || missing+=(python3-grpcio)
fi
if ((${#missing[@]})); then
  echo "compare-node-exporter: missing Debian package(s): ${missing[*]}" >&2
  echo "  install with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
command -v swift >/dev/null || { echo "compare-node-exporter: no swift toolchain on PATH" >&2; exit 1; }

# --- Release binaries, as shipped: static Swift stdlib --------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "building release binaries in $SCRATCH (static Swift stdlib)..." >&2
  for product in accel-exporter accel-simulator; do
    scripts/build-release.sh "$product" --scratch-path "$SCRATCH" >&2
  done
fi
for product in accel-exporter accel-simulator; do
  [[ -x $BIN/$product ]] || { echo "compare-node-exporter: $BIN/$product was not built" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/compare-node-exporter.XXXXXX")
testbed_pid=
peer_pids=()
cleanup() {
  # Only the processes this script started, by id: the testbed runner and the two exporters inside it.
  local pid
  for pid in $(cat "$work"/*.pid 2>/dev/null) $testbed_pid "${peer_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/accel-simulator" describe mi300x-8 > "$work/tree.umockdev"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$NE_PORT" "$AE_PORT"; do
  port_free "$port" || { echo "compare-node-exporter: 127.0.0.1:$port is in use; set NE_PORT/AE_PORT" >&2; exit 1; }
done

# --- The exporter's peers, outside the testbed ------------------------------------------------------------------
exporter_args=()
if [[ $CLIENTS == 1 ]]; then
  node=bench-node namespace=bench
  scripts/test-pki.sh "$work/pki" >/dev/null
  # The GPUs' PCI addresses, as AMD's device plugin names them.
  ids=$(grep -o '^P: /devices/pci.*/drm/card[0-9]*$' "$work/tree.umockdev" | awk -F/ '{print $(NF-2)}' | paste -sd, -)
  [[ -n $ids ]] || { echo "compare-node-exporter: no GPU in the simulated tree" >&2; exit 1; }
  mkdir -p "$work/kubelet"
  "$PYTHON" Benchmarks/support/fake-kubelet.py --socket "$work/kubelet/kubelet.sock" --devices "$ids" \
    --namespace "$namespace" --pod-prefix gpu-pod --resource amd.com/gpu >"$work/kubelet.log" 2>&1 &
  peer_pids+=($!)
  "$PYTHON" Benchmarks/support/pod-seed.py --devices "$ids" --namespace "$namespace" --pod-prefix gpu-pod --node "$node" \
    --app bench >"$work/seed.json"
  "$PYTHON" scripts/fake-apiserver.py --seed "$work/seed.json" --tls-cert "$work/pki/server.pem" \
    --tls-key "$work/pki/server.key" --token bench-token --bookmark-interval 60 >"$work/apiserver.log" 2>&1 &
  peer_pids+=($!)
  "$PYTHON" Benchmarks/support/model-server.py --series 500 --models 5 >"$work/model.log" 2>&1 &
  peer_pids+=($!)
  first_line() {  # log: the port a peer printed first, within 10 s
    local i port
    for ((i = 0; i < 100; i++)); do
      port=$(head -n1 "$1" 2>/dev/null | grep -x '[0-9]*' || true)
      [[ -n $port ]] && { echo "$port"; return 0; }
      sleep 0.1
    done
    echo "compare-node-exporter: $1 printed no port" >&2
    cat "$1" >&2
    exit 1
  }
  api_port=$(first_line "$work/apiserver.log")
  model_port=$(first_line "$work/model.log")
  cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: bench
clusters: [{name: fake, cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$work/pki/ca.pem"}}]
users: [{name: exporter, user: {token: bench-token}}]
contexts: [{name: bench, context: {cluster: fake, user: exporter}}]
YAML
  exporter_args=(--kubernetes.node-name "$node" --kubeconfig "$work/kubeconfig"
    --kubelet.pod-resources-socket "$work/kubelet/kubelet.sock" --kubelet.refresh-interval 1s --kubernetes.pod-labels app
    --inference.targets "$namespace/gpu-pod-0=http://127.0.0.1:$model_port/metrics")
else
  exporter_args=(--no-kubernetes.watch-pods --no-collector.kubelet)
fi

# --- Everything below runs inside ONE umockdev testbed -------------------------------------------------------------
# Arguments: $1 node_exporter, $2 bin dir, $3 work dir, $4 duration, $5 connections, $6 threads, $7/$8 ports, $9 gzip,
# then accel-exporter's extra arguments.
inner=$(cat <<'INNER'
set -euo pipefail
NODE_EXPORTER=$1 BIN=$2 WORK=$3 DURATION=$4 CONNECTIONS=$5 THREADS=$6 NE_PORT=$7 AE_PORT=$8 GZIP=$9
shift 9
pids=()
samplers=()
# Stop both exporters on the way out; the pid files let the outer script do it if this shell is killed first.
trap 'for p in "${pids[@]}" "${samplers[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -f "$WORK"/*.pid' EXIT
# sample_peak NAME PID: WORK/NAME.peak gets the largest RSS seen from now until WORK/NAME.done (every millisecond).
sample_peak() {
  /usr/bin/python3 Benchmarks/support/peak-rss.py "$2" "$WORK/$1.done" > "$WORK/$1.peak" &
  samplers+=($!)
}

"$NODE_EXPORTER" --path.sysfs="$UMOCKDEV_DIR/sys" --collector.disable-defaults --collector.drm --collector.hwmon \
  --web.listen-address=127.0.0.1:"$NE_PORT" > "$WORK/node_exporter.log" 2>&1 &
pids+=($!); echo $! > "$WORK/node_exporter.pid"
sample_peak node_exporter "$!"
# CALLGRIND_OUT (scripts/hot-text-order.sh): accel-exporter runs under callgrind, which writes two profiles: from the
# start to the end of the warm-up, and from there to the end of its wrk run.
wrapper=()
if [[ -n ${CALLGRIND_OUT:-} ]]; then wrapper=(valgrind --tool=callgrind --callgrind-out-file="$CALLGRIND_OUT" --demangle=no
  --dump-instr=no --dump-line=no --compress-strings=no --compress-pos=no); fi
"${wrapper[@]}" "$BIN/accel-exporter" --web.listen-address=127.0.0.1:"$AE_PORT" --log.level=warn "$@" > "$WORK/accel_exporter.log" 2>&1 &
pids+=($!); echo $! > "$WORK/accel_exporter.pid"
sample_peak accel_exporter "$!"

headers=()
[[ $GZIP == 1 ]] && headers=(-H "Accept-Encoding: gzip")

ready() {  # name port: up to 10 s for a first good scrape (60 s under callgrind)
  for _ in $(seq $(( ${#wrapper[@]} ? 600 : 100 ))); do
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$2/metrics" && return 0
    sleep 0.1
  done
  echo "$1 did not answer on 127.0.0.1:$2 within 10 s; its log:" >&2
  tail -20 "$WORK/$1.log" >&2
  exit 1
}
ready node_exporter "$NE_PORT"
ready accel_exporter "$AE_PORT"
# accel-exporter serves the snapshot of its last tick: give the sampler a few ticks so hwmon and amdgpu have both run,
# and let it pass its start-up (it gives back start-up-only code pages 10 s after start).
sleep 12
if ((${#wrapper[@]})); then callgrind_control --dump "${pids[1]}" >/dev/null; fi

ticks=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }  # utime + stime, after the comm field
vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
vm_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
max_rss_while() {  # pid file: samples VmRSS every 0.2 s until the file appears, prints the largest (KiB)
  local top=0 now
  while [[ ! -e $2 ]]; do
    now=$(vm_rss_kib "$1"); (( now > top )) && top=$now
    sleep 0.2
  done
  echo "$top"
}
to_ms() {  # wrk's latency spelling (812.00us, 1.23ms, 1.05s, 1.20m) in milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { print "nan" } }'
}

measure() {  # name pid port -> WORK/name.result (key=value lines)
  local name=$1 pid=$2 port=$3 url="http://127.0.0.1:$3/metrics"
  curl -sf --max-time 5 -o "$WORK/$name.prom" "$url"
  curl -sf --max-time 5 "${headers[@]}" -o "$WORK/$name.wire" "$url"
  timeout 30 wrk -t"$THREADS" -c"$CONNECTIONS" -d3s "${headers[@]}" "$url" > "$WORK/$name.warmup"
  local before after
  before=$(cpu_ticks "$pid")
  max_rss_while "$pid" "$WORK/$name.done" > "$WORK/$name.rss" &
  local sampler=$!
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${headers[@]}" "$url" \
    > "$WORK/$name.wrk"
  after=$(cpu_ticks "$pid")
  touch "$WORK/$name.done"
  cp "/proc/$pid/smaps" "$WORK/$name.smaps" 2>/dev/null || true  # where the resident pages are (KEEP_WORK=1)
  # RSS counts a page shared with another process (libc, or libcrypto and libstdc++ with the Python peers) in full
  # for each; PSS splits it between them, and the private pages are this process's alone.
  # The start-to-now peak sampler stops at the done file; its answer is there within a millisecond or two.
  local peak_kib=
  for _ in $(seq 50); do peak_kib=$(cat "$WORK/$name.peak" 2>/dev/null || true); [[ -n $peak_kib ]] && break; sleep 0.1; done
  local pss_kib private_kib
  pss_kib=$(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup")
  private_kib=$(awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" {k += $2} END {print k}' "/proc/$pid/smaps_rollup")
  wait "$sampler"
  local requests rps p99 p50 errors
  requests=$(awk '/ requests in / {print $1}' "$WORK/$name.wrk")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/$name.wrk")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$WORK/$name.wrk")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")")
  errors=$(grep -E 'Socket errors|Non-2xx' "$WORK/$name.wrk" | tr -s ' ' | paste -sd ';' || true)
  {
    echo "requests=$requests"
    echo "rps=$rps"
    echo "p50_ms=$p50"
    echo "p99_ms=$p99"
    echo "cpu_per_1k=$(awk -v a="$after" -v b="$before" -v t="$ticks" -v r="$requests" \
      'BEGIN {printf "%.4g", (a - b) / t / r * 1000}')"
    echo "rss_mib=$(awk -v k="$(vm_hwm_kib "$pid")" 'BEGIN {printf "%.1f", k / 1024}')"
    echo "sampled_peak_mib=$(awk -v k="$peak_kib" 'BEGIN {printf "%.1f", k / 1024}')"
    echo "load_rss_mib=$(awk -v k="$(cat "$WORK/$name.rss")" 'BEGIN {printf "%.1f", k / 1024}')"
    echo "pss_mib=$(awk -v k="$pss_kib" 'BEGIN {printf "%.1f", k / 1024}')"
    echo "private_mib=$(awk -v k="$private_kib" 'BEGIN {printf "%.1f", k / 1024}')"
    echo "bytes=$(wc -c < "$WORK/$name.prom")"
    echo "wire_bytes=$(wc -c < "$WORK/$name.wire")"
    echo "series=$(grep -cv -e '^#' -e '^$' "$WORK/$name.prom" || true)"
    echo "errors=$errors"
  } > "$WORK/$name.result"
}
# One after the other, so they never compete for the two cores.
measure node_exporter "${pids[0]}" "$NE_PORT"
measure accel_exporter "${pids[1]}" "$AE_PORT"
if ((${#wrapper[@]})); then callgrind_control --dump "${pids[1]}" >/dev/null; fi
INNER
)

echo "running both exporters in one umockdev testbed; wrk ${DURATION}s each..." >&2
timeout --kill-after=10 $((2 * DURATION + 180)) \
  umockdev-run -d "$work/tree.umockdev" -- bash -c "$inner" inner \
  "$NODE_EXPORTER" "$BIN" "$work" "$DURATION" "$CONNECTIONS" "$THREADS" "$NE_PORT" "$AE_PORT" "$GZIP" "${exporter_args[@]}" &
testbed_pid=$!
wait "$testbed_pid"
testbed_pid=

# --- Report --------------------------------------------------------------------------------------------------------
get() { sed -n "s/^$2=//p" "$work/$1.result"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.3gx", a / b }'; }
row() {  # label key
  local ne ae
  ne=$(get node_exporter "$2"); ae=$(get accel_exporter "$2")
  echo "| $1 | $ne | $ae | $(ratio "$ae" "$ne") |"
}
drm=$(grep -c '^node_drm_' "$work/node_exporter.prom" || true)
hwmon=$(grep -c '^node_hwmon_' "$work/node_exporter.prom" || true)
drm_cards=$(grep '^node_drm_' "$work/node_exporter.prom" | grep -o 'card="[^"]*"' | sort -u | paste -sd ' ' || true)
accel=$(grep -c '^accelerator_' "$work/accel_exporter.prom" || true)
accel_gpus=$(grep '^accelerator_up{' "$work/accel_exporter.prom" | grep -c ' 1$' || true)

echo
echo "Same simulated 8-GPU MI300X node (umockdev), wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s each, one after the"
echo "other; $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d). Bodies: $([[ $GZIP == 1 ]] && echo gzip || echo plain)."
echo
echo "| metric | node_exporter 1.5 (drm + hwmon) | accel-exporter | ratio (accel / node) |"
echo "|---|---|---|---|"
row "scrapes/s" rps
row "p50 latency (ms)" p50_ms
row "p99 latency (ms)" p99_ms
row "CPU seconds per 1000 scrapes" cpu_per_1k
row "peak RSS since start, sampled every 1 ms (MiB)" sampled_peak_mib
row "peak RSS since start, VmHWM (MiB)" rss_mib
row "RSS under load, largest VmRSS sample (MiB)" load_rss_mib
row "PSS after the run: shared pages split between their users (MiB)" pss_mib
row "private pages after the run, shared with no process (MiB)" private_mib
row "one scrape (bytes, plain)" bytes
[[ $GZIP == 1 ]] && row "one scrape (bytes, gzip)" wire_bytes
row "series" series
row "requests in the run" requests
echo
echo "node_exporter exports $drm node_drm_ and $hwmon node_hwmon_ series from the tree (drm cards: ${drm_cards:-none});"
echo "accel-exporter exports $accel accelerator_ series, $accel_gpus GPUs up."
if [[ $CLIENTS == 1 ]]; then
  # What the clients did during the run, from accel-exporter's own scrape.
  success=$(grep '^accel_exporter_collector_success{' "$work/accel_exporter.prom" | sed 's/.*collector="\([^"]*\)".* \(.*\)/\1=\2/' | paste -sd ' ' -)
  pods=$(grep -c 'pod="gpu-pod-' "$work/accel_exporter.prom" || true)
  labelled=$(grep -c '^accelerator_pod_labels{.*label_app="bench"' "$work/accel_exporter.prom" || true)
  inference=$(grep -c '^inference_' "$work/accel_exporter.prom" || true)
  echo "clients active: collector success: $success; $pods series naming a pod (kubelet), $labelled pods with the"
  echo "pod watch's label_app, $inference inference_ series (model server)."
fi
for name in node_exporter accel_exporter; do
  errors=$(get "$name" errors)
  [[ -z $errors ]] || echo "warning: $name: wrk reported $errors"
done
