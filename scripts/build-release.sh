#!/usr/bin/env bash
# Builds one product as it ships: release, static Swift stdlib. Every release build (the images, `make release`, the
# benchmarks) goes through here, so they all measure and ship the same binary.
#
# The binaries are laid out for a small resident set: every function is compiled into its own section (dependencies
# included, and the same for every product, so products sharing a scratch path share its objects), and
# accel-exporter's link places the functions its steady state runs, then those its start-up runs
# (Sources/accel-exporter/hot-text.order, made by scripts/hot-text-order.sh), together at one end of .text. The
# kernel maps code 64 KiB at a time, so scattered hot code keeps far more of the binary resident than it runs.
# See docs/performance.md.
#
# Usage: scripts/build-release.sh PRODUCT [more `swift build` options, e.g. --scratch-path DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
product=${1:?usage: scripts/build-release.sh PRODUCT [swift build options]}
shift
layout=()
if [[ $(uname -s) == Linux ]]; then
  layout=(-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections)
  # gold, the toolchain's default linker on Linux, orders by input section name (.text.<symbol>).
  if [[ $product == accel-exporter ]]; then
    order=$PWD/Sources/accel-exporter/hot-text.order
    layout+=(-Xlinker "--section-ordering-file=$order")
    # SwiftPM does not know the link reads the list: a binary older than the list is linked again.
    binary=$(swift build -c release --static-swift-stdlib --show-bin-path "$@")/accel-exporter
    if [[ -e $binary && $order -nt $binary ]]; then rm -f "$binary"; fi
  fi
fi
exec swift build -c release --static-swift-stdlib --product "$product" "${layout[@]}" "$@"
