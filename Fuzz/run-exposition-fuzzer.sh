#!/usr/bin/env bash
# Builds the ExpositionParser libFuzzer target with the Swift toolchain's own libFuzzer + ASan and runs it.
#
#   FUZZ_SECONDS=300 Fuzz/run-exposition-fuzzer.sh      # default 60 seconds
#   FUZZ_JOBS=4 ...                                      # parallel workers (default 1)
#
# The committed corpus (Tests/Fixtures/fuzz/exposition, replayed by ExpositionParserTests in CI) seeds the run.
# New inputs go to .build-fuzz/corpus; at the end only those that add coverage are merged back into the committed
# corpus (libFuzzer -merge=1), at most FUZZ_CORPUS_MAX (200) files in all. Crashes land in .build-fuzz/artifacts/. Not part of CI: it needs minutes.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/.build-fuzz"
corpus="$root/Tests/Fixtures/fuzz/exposition"
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
mkdir -p "$out/corpus" "$out/artifacts"
# The Swift runtime's backtracer and ASan fight over a crashing process; libFuzzer's own report is enough.
export SWIFT_BACKTRACE=enable=no

# Gzip.swift is left out: it is the only file that needs the CZlib system module, and the parser never calls it.
sources=()
for file in Sources/Exposition/*.swift; do
    [[ "$(basename "$file")" == "Gzip.swift" ]] || sources+=("$file")
done

# -sanitize=fuzzer links the toolchain's libclang_rt.fuzzer (it provides main); -parse-as-library because the
# entry point is a plain @_cdecl function. -assert-config Debug keeps the encoder's invariant checks under -O.
swiftc -module-name ExpositionFuzz -swift-version 6 -parse-as-library \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
    -enable-upcoming-feature InternalImportsByDefault \
    -sanitize=fuzzer,address -O -assert-config Debug -g \
    "${sources[@]}" Fuzz/ExpositionFuzzer/ExpositionFuzzer.swift \
    -o "$out/exposition-fuzzer"

parallel=()
if (( jobs > 1 )); then parallel=(-jobs="$jobs" -workers="$jobs"); fi
# Replay mode: Fuzz/run-exposition-fuzzer.sh FILE… runs just those inputs (e.g. a crash artifact).
if (( $# > 0 )); then exec "$out/exposition-fuzzer" "$@"; fi
echo "fuzzing for ${seconds}s on $(ls "$corpus" | wc -l) seed inputs"
"$out/exposition-fuzzer" "$out/corpus" "$corpus" \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    "${parallel[@]}" -artifact_prefix="$out/artifacts/" -print_final_stats=1

# Keep the committed corpus small (< 200 files): merge against a copy of it, then move over only the new inputs
# that reach new coverage, smallest first, up to FUZZ_CORPUS_MAX files in all.
limit="${FUZZ_CORPUS_MAX:-200}"
rm -rf "$out/merge" && mkdir -p "$out/merge" && cp "$corpus"/* "$out/merge/"
"$out/exposition-fuzzer" -merge=1 -max_len=4096 "$out/merge" "$out/corpus" 2>&1 | tail -n 1
room=$(( limit - $(ls "$corpus" | wc -l) ))
added=0
while IFS= read -r file; do
    (( added < room )) || break
    name="$(basename "$file")"
    [[ -e "$corpus/$name" ]] && continue
    cp "$file" "$corpus/$name"
    added=$(( added + 1 ))
done < <(ls -Sr "$out/merge"/* )
echo "added $added new corpus inputs; corpus: $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1)"
