#!/usr/bin/env bash
# Regenerates Sources/PodResourcesAPI from Protos/podresources/v1/api.proto. Only needed when the proto changes:
# the generated files are committed, so neither builds nor CI need protoc or the plugins.
#
# Needs: protoc (Debian protobuf-compiler) and the two plugins, built once outside this repository:
#   git clone <mirror>/apple/swift-protobuf.git && git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
#   git clone <mirror>/grpc/grpc-swift-protobuf.git && git checkout 2.4.1 && swift build -c release --product protoc-gen-grpc-swift-2
# (building protoc-gen-swift from the grpc-swift-protobuf checkout works too: it is a dependency product there).
# Point PROTOC_GEN_SWIFT and PROTOC_GEN_GRPC_SWIFT at them, or put them on PATH.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/Sources/PodResourcesAPI"
proto_dir="$root/Protos/podresources"
gen_swift="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
gen_grpc="${PROTOC_GEN_GRPC_SWIFT:-$(command -v protoc-gen-grpc-swift-2 || true)}"

command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
[ -x "$gen_swift" ] || { echo "protoc-gen-swift not found: set PROTOC_GEN_SWIFT" >&2; exit 1; }
[ -x "$gen_grpc" ] || { echo "protoc-gen-grpc-swift-2 not found: set PROTOC_GEN_GRPC_SWIFT" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Public types (the client and the tests' fake kubelet live in other modules); `public import` on the runtime
# modules because the package builds with InternalImportsByDefault.
protoc --proto_path="$proto_dir" \
  --plugin=protoc-gen-swift="$gen_swift" \
  --swift_out="$tmp" --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
  --plugin=protoc-gen-grpc-swift-2="$gen_grpc" \
  --grpc-swift-2_out="$tmp" --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_opt=UseAccessLevelOnImports=true \
  --grpc-swift-2_opt=Client=true --grpc-swift-2_opt=Server=true \
  v1/api.proto

mkdir -p "$out"
cp "$tmp/v1/api.pb.swift" "$out/api.pb.swift"
cp "$tmp/v1/api.grpc.swift" "$out/api.grpc.swift"
echo "generated: $(cd "$root" && ls Sources/PodResourcesAPI/*.swift | tr '\n' ' ')"
