#!/usr/bin/env bash
# Regenerates Sources/PodResourcesAPI (the messages, which the kubelet client uses) and Sources/PodResourcesGRPC (the
# service's server side, for the tests' fake kubelet) from Protos/podresources/v1/api.proto. Only needed when the proto
# changes: the generated files are committed, so neither builds nor CI need protoc or the plugins. Tools:
# scripts/lib/protoc-swift.sh.
set -euo pipefail
source "$(dirname "$0")/lib/protoc-swift.sh"

out="$root/Sources/PodResourcesAPI"
service="$root/Sources/PodResourcesGRPC"
protoc_swift PodResourcesAPI --proto_path="$root/Protos/podresources" v1/api.proto

mkdir -p "$out" "$service"
cp "$tmp/v1/api.pb.swift" "$out/api.pb.swift"
cp "$tmp/v1/api.grpc.swift" "$service/api.grpc.swift"
echo "generated: $(cd "$root" && ls Sources/PodResourcesAPI/*.swift Sources/PodResourcesGRPC/*.swift | tr '\n' ' ')"
