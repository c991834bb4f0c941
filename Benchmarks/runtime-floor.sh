#!/usr/bin/env bash
# The memory floor of accel-exporter's stack: what a Swift program holds before it samples or serves anything, with
# the runtime and libraries the exporter ships with. Three probes in Benchmarks/runtime-floor, release builds with a
# static Swift stdlib (as the exporter ships):
#   bare:       the Swift runtime and standard library only;
#   essentials: plus FoundationEssentials, used as the exporter uses it (JSON, Data, Date);
#   libraries:  plus the exporter's system libraries (libcurl-gnutls, libmicrohttpd, GnuTLS, libsensors, libyaml,
#               zlib, libcrypt, libm) linked as the exporter links them, and libcurl initialised as the exporter
#               does; then the exporter's start-up trim (MADV_PAGEOUT of read-only file pages);
#   deferred:   the essentials probe trimmed first, and only then the same libraries loaded with dlopen and libcurl
#               initialised, then trimmed again: the lowest peak the stack allows when the libraries' relocation
#               does not stack on the runtime's start-up.
# Each probe runs RUNS times, interleaved; the table gives the peak (the largest VmHWM or VmRSS the probe read: after
# MADV_PAGEOUT the kernel's VmHWM can read below an RSS seen earlier), the RSS before and after the trim,
# min / median / max, in MiB. Compare the peaks with node_exporter's in Benchmarks/compare-node-exporter.sh:
# an exporter built this way cannot peak below them.
#
# When the release exporter is there ($BIN/accel-exporter, e.g. after compare-node-exporter.sh), its NEEDED list is
# compared with the libraries probe's, so a library added to the exporter and not to the probe is reported.
#
# Usage: Benchmarks/runtime-floor.sh
# Environment: RUNS (default 5), KEEP_WORK=1 to keep each probe's output and print the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=runtime-floor
source Benchmarks/support/common.sh

RUNS=${RUNS:-5}
PROBES=(bare essentials libraries deferred)
need_command readelf binutils
need_command timeout coreutils
require_needed

make_work_dir
trap finish_work_dir EXIT
scratch=$SCRATCH/runtime-floor
echo "building the probes in $scratch (release, static Swift stdlib)..." >&2
swift build -c release --static-swift-stdlib --package-path Benchmarks/runtime-floor --scratch-path "$scratch" >&2
probes=$(swift build -c release --static-swift-stdlib --package-path Benchmarks/runtime-floor --scratch-path "$scratch" --show-bin-path)

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort; }
if [[ -x $BIN/accel-exporter ]]; then
  extra=$(comm -23 <(needed "$BIN/accel-exporter") <(needed "$probes/floor-libraries"))
  if [[ -n $extra ]]; then
    echo "$BENCH_NAME: accel-exporter links libraries the probe does not; add them to Benchmarks/runtime-floor:" $extra >&2
    exit 1
  fi
  echo "the libraries probe links every library $BIN/accel-exporter names (NEEDED)" >&2
fi

for ((run = 0; run < RUNS; run++)); do
  for probe in "${PROBES[@]}"; do
    timeout 30 "$probes/floor-$probe" >> "$work/$probe.out"
  done
done

# stats FILE LABEL FIELD: "min / median / max" in MiB of FIELD=kib on the lines starting with LABEL.
stats() {
  awk -v label="$2" -v field="$3" '$1 == label {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == field) v[n++] = kv[2] / 1024 } }
    END {
      if (n == 0) { print "-"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      printf "%.1f / %.1f / %.1f", v[0], (n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2), v[n - 1] }' "$1"
}

echo
echo "Runtime floor, $RUNS runs each, interleaved; $(nproc) cores, $(uname -m), $(date +%F). MiB, min / median / max."
echo
echo "| probe | peak RSS, VmHWM | RSS | RSS after the start-up trim |"
echo "|---|---|---|---|"
echo "| Swift runtime and standard library (static) | $(stats "$work/bare.out" bare hwm_kib) | $(stats "$work/bare.out" bare rss_kib) | - |"
echo "| + FoundationEssentials | $(stats "$work/essentials.out" essentials hwm_kib) | $(stats "$work/essentials.out" essentials rss_kib) | - |"
echo "| + the exporter's system libraries, linked; libcurl initialised | $(stats "$work/libraries.out" trimmed peak_kib) | $(stats "$work/libraries.out" libraries rss_kib) | $(stats "$work/libraries.out" trimmed rss_kib) |"
echo "| the same libraries loaded with dlopen after a trim | $(stats "$work/deferred.out" deferred-trimmed peak_kib) | $(stats "$work/deferred.out" deferred rss_kib) | $(stats "$work/deferred.out" deferred-trimmed rss_kib) |"
