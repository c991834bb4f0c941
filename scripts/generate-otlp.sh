#!/usr/bin/env bash
# Regenerates Sources/OTLPProto from Protos/opentelemetry/*.proto (OTLP's metrics messages, cut to what the exporter
# sends; the export call goes through UnaryGRPC, so no service code is kept). Only needed when a proto changes: the
# generated files are committed, so neither builds nor CI need protoc or the plugins. Tools: scripts/lib/protoc-swift.sh.
set -euo pipefail
source "$(dirname "$0")/lib/protoc-swift.sh"

out="$root/Sources/OTLPProto"
# Only a client: the tests' receiver is Python's decoder (and the push writes its wire bytes itself; the generated
# types are the tests' reference).
protoc_swift OTLPProto --proto_path="$root/Protos/opentelemetry" common.proto resource.proto metrics.proto metrics_service.proto

mkdir -p "$out"
rm -f "$out"/*.swift
# Only the service file has gRPC code; the plugin writes an empty file for each of the others.
cp "$tmp"/*.pb.swift "$out/"
echo "generated: $(cd "$root" && ls Sources/OTLPProto/*.swift | tr '\n' ' ')"
