#!/usr/bin/env bash
# libFuzzer over every parser that takes outside bytes (Sources/FuzzTargets, linked by Fuzz/ into one binary that
# FUZZ_TARGET points at a target). Builds Fuzz/ with -sanitize=fuzzer,address into .build-fuzz, then runs each target
# for FUZZ_SECONDS over a scratch copy of its corpus (Fuzz/Corpus/<target>), so that what libFuzzer adds never lands
# in git. A crash, leak, timeout or out-of-memory stops that target and is kept in .build-fuzz/artifacts/<run>/<target>/.
#
#   make fuzz                                        # every target, FUZZ_SECONDS (60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh quantity kubeconfig
#   scripts/fuzz.sh --replay quantity FILE...        # run inputs (an artifact) through one target
#
# Exit status 1 when any target found something. Minimize a finding before adding it to the corpus:
#   FUZZ_TARGET=quantity .build-fuzz/debug/accel-fuzz -minimize_crash=1 -runs=20000 -exact_artifact_path=min FILE
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scratch="$root/.build-fuzz"
seconds="${FUZZ_SECONDS:-60}"
rss_mb="${FUZZ_RSS_MB:-2048}"
# The Swift runtime's backtracer would hold a crashing process for a long time; libFuzzer's report is enough.
export SWIFT_BACKTRACE=enable=no
# Statics built once that LeakSanitizer cannot follow into (see the file); real leaks are still reported.
export LSAN_OPTIONS="suppressions=$root/Fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

swift build --package-path Fuzz --scratch-path "$scratch" -c debug -Xswiftc -sanitize=fuzzer,address
binary="$scratch/debug/accel-fuzz"

if [[ "${1:-}" == "--replay" ]]; then
    target="$2"
    shift 2
    FUZZ_TARGET="$target" exec timeout 600 "$binary" -rss_limit_mb="$rss_mb" -timeout=10 "$@"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/accel-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
artifacts="$scratch/artifacts/$(date +%Y%m%d-%H%M%S)"

declare -A max_len=()
order=()
while read -r name length; do
    max_len[$name]=$length
    order+=("$name")
done < <(FUZZ_TARGET=list "$binary")
if (( $# > 0 )); then order=("$@"); fi

found=0
summary=()
for name in "${order[@]}"; do
    [[ -n "${max_len[$name]:-}" ]] || { echo "no fuzz target $name (targets: ${!max_len[*]})" >&2; exit 2; }
    mkdir -p "$work/$name" "$artifacts/$name"
    cp Fuzz/Corpus/"$name"/* "$work/$name/"
    echo "== $name: ${seconds}s, -max_len=${max_len[$name]}, $(ls "$work/$name" | wc -l) seed inputs"
    status=0
    FUZZ_TARGET="$name" timeout $(( seconds + 120 )) "$binary" "$work/$name" \
        -max_total_time="$seconds" -max_len="${max_len[$name]}" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/$name/" >"$work/$name.log" 2>&1 || status=$?
    executions=$(awk '/stat::number_of_executed_units/ { n = $2 } END { print n }' "$work/$name.log")
    findings=$(find "$artifacts/$name" -type f | wc -l)
    if (( status != 0 || findings > 0 )); then
        found=1
        grep -m 8 -E '^(==[0-9]+==ERROR|SUMMARY|.*Fatal error|ALARM|.*out-of-memory|artifact_prefix|Test unit written)' "$work/$name.log" || tail -n 20 "$work/$name.log"
    else
        rmdir "$artifacts/$name"
    fi
    summary+=("$(printf '%-22s %6ss %12s executions  %s findings (exit %s)' "$name" "$seconds" "${executions:-?}" "$findings" "$status")")
done
rmdir "$artifacts" 2>/dev/null || echo "findings kept in $artifacts"
printf '%s\n' "${summary[@]}"
exit "$found"
