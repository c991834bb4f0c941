#!/usr/bin/env bash
# Checks accel-exporter against a real NVIDIA GPU: runs the carried release build (device-bundle/, made by
# scripts/build-device-bundle.sh on a machine with Swift), compares its NVML readings with nvidia-smi/pynvml and its
# GPM families (SM and tensor activity, memory bandwidth) with pynvml's own GPM readings at idle and under a bf16
# matmul load (torch; fp16 with cupy; skipped, saying so, with neither), checks GPM's PCIe rate unit against a timed
# host-to-device copy (torch), and writes a report (scripts/device-check.py).
#
#   bash scripts/device-check.sh          # from the repository root, on the GPU machine
#
# Needs: device-bundle/, nvidia-smi, python3 (torch or cupy and pynvml optional; the GPM rows need pynvml 12.535+).
# No Swift, no network.
# Writes to OUT (default /tmp/device-check), at most 10 files:
#   report.md          environment, every check (metric, nvidia-smi, exporter, tolerance, result), exporter RSS,
#                      ldd, shutdown, log excerpts; also printed at the end
#   device-check.json  the same checks, machine-readable
#   exporter.log       the exporter's stdout/stderr (--log.level debug)
#   metrics-idle.prom, metrics-load.prom, metrics-final.prom, metrics-gpm-idle.prom, metrics-gpm-load.prom
#                      /metrics snapshots
#   nvidia-smi-q.txt   nvidia-smi -q, for reading a mismatch afterwards
# Exit status: 0 when every check passed, 1 otherwise. It never stops half-way without writing report.md, and every
# step runs under `timeout` (about 3 minutes in all; 6 at the very most).
set -u
set -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
BUNDLE=${BUNDLE:-$REPO/device-bundle}
EXPORTER=${ACCEL_EXPORTER:-$BUNDLE/bin/accel-exporter}   # ACCEL_EXPORTER: a stand-in, for testing this script
PY=${PYTHON:-python3}
ADDR=${DEVICE_CHECK_ADDR:-127.0.0.1:9445}                  # override only to test this script beside another exporter
URL=http://$ADDR
export PYTHONUNBUFFERED=1
[[ -d /usr/local/nvidia/bin ]] && PATH=$PATH:/usr/local/nvidia/bin

T0=$(date +%s)
WORK=$(mktemp -d)
EXP_PID=""
FAILS=()          # failures found by this script itself (the Python checks report their own)

REPORT_DONE=0
cleanup() {
    local rc=$?
    ((REPORT_DONE)) || { trap - INT TERM; interrupted "the script stopped early (status $rc)"; }
    if [[ -n $EXP_PID ]] && kill -0 "$EXP_PID" 2>/dev/null; then kill -KILL "$EXP_PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
# Stopped from outside (the caller's own timeout) or by a bug here: still leave a report saying so, with what is known.
interrupted() {
    REPORT_DONE=1
    {
        printf '# accel-exporter device check: FAIL (%s after %d s)\n\n' "${1:-interrupted}" "$(($(date +%s) - T0))"
        printf '## Environment\n\n```\n'
        cat "$WORK/env.txt" 2>/dev/null
        printf '```\n\n'
        [[ -f $OUT/report.md ]] && grep -v '^# ' "$OUT/report.md"
    } >"$OUT/report.md.new" 2>/dev/null
    mv -f "$OUT/report.md.new" "$OUT/report.md" 2>/dev/null
    cat "$OUT/report.md" 2>/dev/null
    if [[ -n $EXP_PID ]] && kill -0 "$EXP_PID" 2>/dev/null; then kill -KILL "$EXP_PID" 2>/dev/null; fi
    rm -rf "$WORK"
    exit 1
}
trap cleanup EXIT
trap interrupted INT TERM

say() { printf '%s\n' "$*"; }
# Runs a command under a timeout into the report's environment section, as a fenced block.
envcmd() {
    local t=$1
    shift
    {
        printf '$ %s\n' "$*"
        timeout -k 5 "$t" "$@" 2>&1 | head -40
        local rc=$?
        ((rc == 0)) || printf '(exit %d)\n' "$rc"
    } >>"$WORK/env.txt"
}

# --- environment -----------------------------------------------------------------------------------------------------
: >"$WORK/env.txt"
envcmd 30 nvidia-smi -L
envcmd 30 nvidia-smi --query-gpu=name,driver_version,vbios_version,pci.bus_id,memory.total --format=csv
envcmd 30 bash -c "nvidia-smi | grep -m1 'CUDA Version' || true"
envcmd 5 uname -srm
envcmd 5 bash -c 'ldd --version | head -1'
# shellcheck disable=SC2016 # expanded by the inner bash
envcmd 5 bash -c '. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"'
envcmd 5 bash -c 'nproc; grep -m1 "model name" /proc/cpuinfo; grep MemTotal /proc/meminfo'
envcmd 10 "$PY" --version
envcmd 60 "$PY" -c '
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
except Exception as e:
    print("torch:", type(e).__name__, e)'
envcmd 20 "$PY" -c '
try:
    import pynvml
    pynvml.nvmlInit()
    print("pynvml", getattr(pynvml, "__version__", "?"), "NVML", pynvml.nvmlSystemGetNVMLVersion())
except Exception as e:
    print("pynvml:", type(e).__name__, e)'

# libnvidia-ml.so.1: the exporter dlopen()s it by soname. Where the loader cache does not know it (driver mounted
# at /usr/local/nvidia, say), add its directory to LD_LIBRARY_PATH. Never a CUDA "stubs" directory: the stub fails.
NVML_DIR=""
if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml\.so\.1 '; then
    NVML_WHERE="loader cache: $(ldconfig -p | awk '/libnvidia-ml\.so\.1 / { print $NF; exit }')"
else
    for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }} /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 \
        /usr/lib /lib/x86_64-linux-gnu /usr/lib/wsl/lib; do
        if [[ -e $d/libnvidia-ml.so.1 && $d != *stubs* ]]; then NVML_DIR=$d; break; fi
    done
    if [[ -z $NVML_DIR ]]; then
        found=$(timeout 20 find /usr /opt /lib -maxdepth 5 -name libnvidia-ml.so.1 -not -path '*stubs*' 2>/dev/null | head -1)
        [[ -n $found ]] && NVML_DIR=$(dirname "$found")
    fi
    NVML_WHERE=${NVML_DIR:+not in the loader cache; found in $NVML_DIR (added to LD_LIBRARY_PATH)}
    NVML_WHERE=${NVML_WHERE:-NOT FOUND (the nvidia collector will report it)}
fi
say "libnvidia-ml.so.1: $NVML_WHERE" >>"$WORK/env.txt"
EXP_LD_PATH=$BUNDLE/lib${NVML_DIR:+:$NVML_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cat "$WORK/env.txt"

timeout -k 5 60 nvidia-smi -q >"$OUT/nvidia-smi-q.txt" 2>&1

# --- exporter --------------------------------------------------------------------------------------------------------
READY="no"
if [[ ! -x $EXPORTER ]]; then
    FAILS+=("no exporter binary at $EXPORTER (run scripts/build-device-bundle.sh and carry device-bundle)")
else
    LDD_OUT=$(LD_LIBRARY_PATH=$EXP_LD_PATH timeout 20 ldd "$EXPORTER" 2>&1)
    if grep -q 'not found' <<<"$LDD_OUT"; then FAILS+=("ldd: a library is not found (see the ldd section)"); fi
    say "starting $EXPORTER on $ADDR"
    LD_LIBRARY_PATH=$EXP_LD_PATH "$EXPORTER" --web.listen-address "$ADDR" --collect.interval 1s --no-collector.amdgpu \
        --log.level debug >"$OUT/exporter.log" 2>&1 &
    EXP_PID=$!
    T_READY0=$(date +%s.%N)
    if timeout -k 5 25 "$PY" scripts/device-check.py --url "$URL" --wait-ready 20; then
        READY="yes, after $(awk -v a="$T_READY0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
    else
        FAILS+=("/readyz did not answer 200 within 20 s")
        kill -0 "$EXP_PID" 2>/dev/null || FAILS+=("the exporter exited early: see exporter.log")
    fi
fi

# --- the checks ------------------------------------------------------------------------------------------------------
PY_RC="not run"
if [[ -n $EXP_PID ]] && kill -0 "$EXP_PID" 2>/dev/null; then
    rm -f "$OUT/report.md" "$OUT/device-check.json"
    timeout -k 10 330 "$PY" scripts/device-check.py --url "$URL" --out "$OUT" --exporter-pid "$EXP_PID"
    PY_RC=$?
    ((PY_RC == 0)) || FAILS+=("device-check.py exited $PY_RC (its FAIL rows are in the table below)")
fi

# --- exporter memory, final snapshot, graceful shutdown ----------------------------------------------------------------
RSS="n/a"
SHUTDOWN="n/a"
if [[ -n $EXP_PID ]] && kill -0 "$EXP_PID" 2>/dev/null; then
    RSS=$(awk '/^(VmRSS|VmHWM):/ { printf "%s %s %s  ", $1, $2, $3 }' "/proc/$EXP_PID/status" 2>/dev/null)
    timeout -k 5 15 "$PY" scripts/device-check.py --url "$URL" --fetch /metrics --to "$OUT/metrics-final.prom" \
        || FAILS+=("final /metrics fetch failed")
    kill -TERM "$EXP_PID"
    for _ in $(seq 1 50); do kill -0 "$EXP_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$EXP_PID" 2>/dev/null; then
        kill -KILL "$EXP_PID"
        SHUTDOWN="did not exit within 10 s of SIGTERM: killed"
        FAILS+=("exporter ignored SIGTERM for 10 s")
    fi
    wait "$EXP_PID" 2>/dev/null
    rc=$?
    [[ $SHUTDOWN == n/a ]] && SHUTDOWN="exit status $rc after SIGTERM"
    [[ $SHUTDOWN == "exit status 0 after SIGTERM" ]] || [[ $SHUTDOWN == *killed ]] || FAILS+=("exporter $SHUTDOWN")
elif [[ -n $EXP_PID ]]; then
    wait "$EXP_PID" 2>/dev/null
    SHUTDOWN="had already exited (status $?) before the end of the check"
    FAILS+=("exporter $SHUTDOWN")
fi
EXP_PID=""

# Keep the log within what comes back (16 MiB a file).
if [[ -f $OUT/exporter.log ]] && (($(stat -c %s "$OUT/exporter.log") > 12 * 1024 * 1024)); then
    { head -c 2000000 "$OUT/exporter.log"; printf '\n[... cut ...]\n'; tail -c 8000000 "$OUT/exporter.log"; } >"$WORK/log"
    mv "$WORK/log" "$OUT/exporter.log"
fi

# --- report ----------------------------------------------------------------------------------------------------------
VERDICT=PASS
((${#FAILS[@]} == 0)) || VERDICT=FAIL
[[ $PY_RC == 0 ]] || VERDICT=FAIL
{
    say "# accel-exporter device check: $VERDICT"
    say ""
    say "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(($(date +%s) - T0)) s, host $(uname -n), OUT=$OUT"
    if ((${#FAILS[@]})); then
        say ""
        for f in "${FAILS[@]}"; do say "- **FAIL** $f"; done
    fi
    say ""
    say "## Environment"
    say ""
    say '```'
    cat "$WORK/env.txt"
    say '```'
    if [[ -f $BUNDLE/MANIFEST ]]; then
        say ""
        say "Bundle: $(grep -m1 '^git commit:' "$BUNDLE/MANIFEST" | tr -s ' '); $(grep -m1 '^built:' "$BUNDLE/MANIFEST" | tr -s ' '); $(grep -m1 '^min glibc:' "$BUNDLE/MANIFEST" | cut -d'(' -f1 | tr -s ' ')"
    fi
    say ""
    if [[ -f $OUT/report.md ]]; then
        cat "$OUT/report.md"
    else
        say "## Checks"
        say ""
        say "device-check.py wrote no report (status: $PY_RC)."
    fi
    say ""
    say "## Exporter process"
    say ""
    say "- ready: $READY"
    say "- memory after the check: ${RSS:-n/a}"
    say "- shutdown: $SHUTDOWN"
    say "- libnvidia-ml.so.1: $NVML_WHERE"
    say "- log: $(wc -l <"$OUT/exporter.log" 2>/dev/null) lines, $(grep -cE 'level=(warning|error|critical)' "$OUT/exporter.log" 2>/dev/null) at warning or above"
    say ""
    say "### ldd (as run here, LD_LIBRARY_PATH=$EXP_LD_PATH)"
    say ""
    say '```'
    say "${LDD_OUT:-n/a}"
    say '```'
    say ""
    say "### Log: warnings and errors (first 30)"
    say ""
    say '```'
    grep -E 'level=(warning|error|critical)' "$OUT/exporter.log" 2>/dev/null | head -30
    say '```'
    say ""
    say "### Log: first 25 lines"
    say ""
    say '```'
    head -25 "$OUT/exporter.log" 2>/dev/null | cut -c1-400
    say '```'
} >"$WORK/report.md"
mv "$WORK/report.md" "$OUT/report.md"
REPORT_DONE=1
say ""
say "================================================================================================================"
cat "$OUT/report.md"
say ""
files=("$OUT"/*)
say "files in $OUT: ${files[*]##*/}"
[[ $VERDICT == PASS ]]
