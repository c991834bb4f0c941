#!/usr/bin/env bash
# Regenerates Sources/PodResourcesAPI from Protos/podresources/v1/api.proto. Only needed when the proto changes:
# the generated files are committed, so neither builds nor CI need protoc or the plugins. Tools: scripts/lib/protoc-swift.sh.
set -euo pipefail
source "$(dirname "$0")/lib/protoc-swift.sh"

out="$root/Sources/PodResourcesAPI"
# Client and server: the exporter's kubelet client, and the tests' fake kubelet.
protoc_swift true --proto_path="$root/Protos/podresources" v1/api.proto

mkdir -p "$out"
cp "$tmp/v1/api.pb.swift" "$out/api.pb.swift"
cp "$tmp/v1/api.grpc.swift" "$out/api.grpc.swift"
echo "generated: $(cd "$root" && ls Sources/PodResourcesAPI/*.swift | tr '\n' ' ')"
