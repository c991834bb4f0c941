#!/usr/bin/env bash
# Regenerates Sources/TPURuntimeAPI from Protos/tpu/runtime_metric_service.proto (libtpu's runtime-metrics
# service). Only needed when the proto changes: the generated files are committed, so neither builds nor CI need
# protoc or the plugins.
#
# Needs the same tools as scripts/generate-podresources.sh: protoc (Debian protobuf-compiler) and the two plugins,
# protoc-gen-swift (swift-protobuf 1.39.0) and protoc-gen-grpc-swift-2 (grpc-swift-protobuf 2.4.1), built once
# outside this repository (see that script). Point PROTOC_GEN_SWIFT and PROTOC_GEN_GRPC_SWIFT at them, or put
# them on PATH.
#
# The proto imports google/protobuf/timestamp.proto. Debian's protoc ships without the well-known types unless
# libprotobuf-dev is installed, so they are taken from swift-protobuf's checkout under .build (present after any
# `swift build`) unless PROTOC_WKT_INCLUDE names another directory that holds google/protobuf/timestamp.proto.
# The generated code uses SwiftProtobuf's own Google_Protobuf_Timestamp either way.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/Sources/TPURuntimeAPI"
proto_dir="$root/Protos/tpu"
gen_swift="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
gen_grpc="${PROTOC_GEN_GRPC_SWIFT:-$(command -v protoc-gen-grpc-swift-2 || true)}"
wkt="${PROTOC_WKT_INCLUDE:-$root/.build/checkouts/swift-protobuf/Protos/Sources/SwiftProtobuf}"

command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
[ -x "$gen_swift" ] || { echo "protoc-gen-swift not found: set PROTOC_GEN_SWIFT" >&2; exit 1; }
[ -x "$gen_grpc" ] || { echo "protoc-gen-grpc-swift-2 not found: set PROTOC_GEN_GRPC_SWIFT" >&2; exit 1; }
[ -f "$wkt/google/protobuf/timestamp.proto" ] || {
  echo "google/protobuf/timestamp.proto not found under $wkt: run swift build once, or set PROTOC_WKT_INCLUDE" >&2
  exit 1
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Public types (the client and the tests' fake libtpu live in other modules); `public import` on the runtime
# modules because the package builds with InternalImportsByDefault. Client and server: the tests serve the same
# generated service on loopback.
protoc --proto_path="$proto_dir" --proto_path="$wkt" \
  --plugin=protoc-gen-swift="$gen_swift" \
  --swift_out="$tmp" --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
  --plugin=protoc-gen-grpc-swift-2="$gen_grpc" \
  --grpc-swift-2_out="$tmp" --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_opt=UseAccessLevelOnImports=true \
  --grpc-swift-2_opt=Client=true --grpc-swift-2_opt=Server=true \
  runtime_metric_service.proto

mkdir -p "$out"
cp "$tmp/runtime_metric_service.pb.swift" "$out/runtime_metric_service.pb.swift"
cp "$tmp/runtime_metric_service.grpc.swift" "$out/runtime_metric_service.grpc.swift"
echo "generated: $(cd "$root" && ls Sources/TPURuntimeAPI/*.swift | tr '\n' ' ')"
