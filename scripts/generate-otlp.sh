#!/usr/bin/env bash
# Regenerates Sources/OTLPProto from Protos/opentelemetry/*.proto (OTLP's metrics messages and export service, cut
# to what the exporter sends). Only needed when a proto changes: the generated files are committed, so neither
# builds nor CI need protoc or the plugins.
#
# Needs the same tools as scripts/generate-podresources.sh: protoc (Debian protobuf-compiler) and the two plugins,
# protoc-gen-swift (swift-protobuf 1.39.0) and protoc-gen-grpc-swift-2 (grpc-swift-protobuf 2.4.1), built once
# outside this repository (see that script). Point PROTOC_GEN_SWIFT and PROTOC_GEN_GRPC_SWIFT at them, or put
# them on PATH.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/Sources/OTLPProto"
proto_dir="$root/Protos/opentelemetry"
gen_swift="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
gen_grpc="${PROTOC_GEN_GRPC_SWIFT:-$(command -v protoc-gen-grpc-swift-2 || true)}"

command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
[ -x "$gen_swift" ] || { echo "protoc-gen-swift not found: set PROTOC_GEN_SWIFT" >&2; exit 1; }
[ -x "$gen_grpc" ] || { echo "protoc-gen-grpc-swift-2 not found: set PROTOC_GEN_GRPC_SWIFT" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Public types (the exporter's OTLP module and the tests use them); `public import` on the runtime modules because
# the package builds with InternalImportsByDefault. Only a client: the tests' receiver is Python's decoder.
protoc --proto_path="$proto_dir" \
  --plugin=protoc-gen-swift="$gen_swift" \
  --swift_out="$tmp" --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
  --plugin=protoc-gen-grpc-swift-2="$gen_grpc" \
  --grpc-swift-2_out="$tmp" --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_opt=UseAccessLevelOnImports=true \
  --grpc-swift-2_opt=Client=true --grpc-swift-2_opt=Server=false \
  common.proto resource.proto metrics.proto metrics_service.proto

mkdir -p "$out"
rm -f "$out"/*.swift
# Only the service file has gRPC code; the plugin writes an empty file for each of the others.
cp "$tmp"/*.pb.swift "$tmp"/metrics_service.grpc.swift "$out/"
echo "generated: $(cd "$root" && ls Sources/OTLPProto/*.swift | tr '\n' ' ')"
