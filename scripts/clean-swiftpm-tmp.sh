#!/usr/bin/env bash
# SwiftPM leaves a TemporaryDirectory.* folder holding only `.keep-directory` in the temp folder for every build
# (about 6) and every `swift test` (about 5), whether or not a test runs; the tests clean up after themselves.
# Removes those made since MARK (a file touched when the run began), and nothing else.
set -u
mark=$1
[ -e "$mark" ] || exit 0
for dir in "${TMPDIR:-/tmp}"/TemporaryDirectory.*; do
  [ -d "$dir" ] && [ "$dir" -nt "$mark" ] || continue
  entries=$(find "$dir" -mindepth 1 -maxdepth 1 | head -2)
  if [ -z "$entries" ] || [ "$entries" = "$dir/.keep-directory" ]; then rm -rf -- "$dir"; fi
done
