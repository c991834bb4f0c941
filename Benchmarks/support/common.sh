# What the Benchmarks/*.sh scripts share. Source it after `cd` to the package root, with BENCH_NAME set to the
# script's name (it prefixes every message):
#   need_command CMD PACKAGE / need_python_module MODULE PACKAGE, then require_needed: missing Debian packages, at once
#   make_work_dir: $work (a fresh temp folder) with its start mark; finish_work_dir in the script's EXIT trap
#   build_release PRODUCT...: release binaries with a static Swift stdlib in $SCRATCH (unless SKIP_BUILD=1)
#   need_otlp_receiver: exits unless scripts/otlp-receiver.py's decoder is installed
#   port_free PORT, vm_kib PID FIELD (VmRSS, VmHWM…)

SCRATCH=.build-bench
BIN=$SCRATCH/release
bench_missing=()

need_command() { command -v "$1" >/dev/null || bench_missing+=("$2"); }
need_python_module() { /usr/bin/python3 -c "import $1" 2>/dev/null || bench_missing+=("$2"); }

require_needed() {
  if ((${#bench_missing[@]})); then
    echo "$BENCH_NAME: missing Debian package(s): ${bench_missing[*]}" >&2
    echo "  install with: sudo apt-get install ${bench_missing[*]}" >&2
    exit 1
  fi
  command -v swift >/dev/null || { echo "$BENCH_NAME: no swift toolchain on PATH" >&2; exit 1; }
}

make_work_dir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
  touch "$work/.started"
}

# The end of every script's EXIT trap, after its processes are stopped.
finish_work_dir() {
  # SwiftPM leaves empty TemporaryDirectory.* folders in the temp folder on every build (see the Makefile).
  [[ ${SKIP_BUILD:-0} == 1 ]] || bash scripts/clean-swiftpm-tmp.sh "$work/.started"
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}

build_release() {
  local product
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "building release binaries in $SCRATCH (static Swift stdlib)..." >&2
    for product in "$@"; do
      timeout 3600 scripts/build-release.sh "$product" --scratch-path "$SCRATCH" >&2
    done
  fi
  for product in "$@"; do
    [[ -x $BIN/$product ]] || { echo "$BENCH_NAME: $BIN/$product was not built" >&2; exit 1; }
  done
}

# scripts/otlp-receiver.py decodes with PyPI's opentelemetry-proto (scripts/install-deps.sh installs it).
need_otlp_receiver() {
  python3 -c 'import opentelemetry.proto' 2>/dev/null || {
    echo "$BENCH_NAME: scripts/otlp-receiver.py needs PyPI's opentelemetry-proto: pip install opentelemetry-proto" >&2
    exit 1
  }
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
vm_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
