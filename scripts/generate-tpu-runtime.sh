#!/usr/bin/env bash
# Regenerates Sources/TPURuntimeAPI (the messages, which the libtpu client uses) and Sources/TPURuntimeGRPC (the
# service's server side, for the tests' fake libtpu) from Protos/tpu/runtime_metric_service.proto. Only needed when
# the proto changes: the generated files are committed, so neither builds nor CI need protoc or the plugins. Tools:
# scripts/lib/protoc-swift.sh.
#
# The proto imports google/protobuf/timestamp.proto. Debian's protoc ships without the well-known types unless
# libprotobuf-dev is installed, so they are taken from swift-protobuf's checkout under .build (present after any
# `swift build`) unless PROTOC_WKT_INCLUDE names another directory that holds google/protobuf/timestamp.proto.
# The generated code uses SwiftProtobuf's own Google_Protobuf_Timestamp either way.
set -euo pipefail
source "$(dirname "$0")/lib/protoc-swift.sh"

out="$root/Sources/TPURuntimeAPI"
wkt="${PROTOC_WKT_INCLUDE:-$root/.build/checkouts/swift-protobuf/Protos/Sources/SwiftProtobuf}"
[ -f "$wkt/google/protobuf/timestamp.proto" ] || {
  echo "google/protobuf/timestamp.proto not found under $wkt: run swift build once, or set PROTOC_WKT_INCLUDE" >&2
  exit 1
}
service="$root/Sources/TPURuntimeGRPC"
protoc_swift TPURuntimeAPI --proto_path="$root/Protos/tpu" --proto_path="$wkt" runtime_metric_service.proto

mkdir -p "$out" "$service"
cp "$tmp/runtime_metric_service.pb.swift" "$out/runtime_metric_service.pb.swift"
cp "$tmp/runtime_metric_service.grpc.swift" "$service/runtime_metric_service.grpc.swift"
echo "generated: $(cd "$root" && ls Sources/TPURuntimeAPI/*.swift Sources/TPURuntimeGRPC/*.swift | tr '\n' ' ')"
