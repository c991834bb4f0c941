# What the three generators (generate-podresources.sh, generate-tpu-runtime.sh, generate-otlp.sh) share: finding
# protoc and the two plugins, and running them into a temporary folder. Source it; it sets $root and $tmp (removed on
# exit) and defines protoc_swift.
#
# Needs: protoc (Debian protobuf-compiler) and the two plugins, built once outside this repository:
#   git clone <mirror>/apple/swift-protobuf.git && git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
#   git clone <mirror>/grpc/grpc-swift-protobuf.git && git checkout 2.4.1 && swift build -c release --product protoc-gen-grpc-swift-2
# (building protoc-gen-swift from the grpc-swift-protobuf checkout works too: it is a dependency product there; a
# `swift build` of this package also leaves both in .build/<triple>/debug). Point PROTOC_GEN_SWIFT and
# PROTOC_GEN_GRPC_SWIFT at them, or put them on PATH.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
gen_swift="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
gen_grpc="${PROTOC_GEN_GRPC_SWIFT:-$(command -v protoc-gen-grpc-swift-2 || true)}"

command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
[ -x "$gen_swift" ] || { echo "protoc-gen-swift not found: set PROTOC_GEN_SWIFT" >&2; exit 1; }
[ -x "$gen_grpc" ] || { echo "protoc-gen-grpc-swift-2 not found: set PROTOC_GEN_GRPC_SWIFT" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# protoc_swift MESSAGES_MODULE PROTOC_ARGS...: messages and the gRPC service (server side only) into $tmp. Public
# types (the exporter's clients and the tests' fakes live in other modules); `public import` on the runtime modules
# because the package builds with InternalImportsByDefault. The messages go into MESSAGES_MODULE, which needs only
# SwiftProtobuf: the exporter's clients call through UnaryGRPC and link no gRPC framework. The service code is for
# the test fakes' grpc-swift servers, in a module of its own that imports MESSAGES_MODULE.
protoc_swift() {
  local module=$1 proto
  shift
  protoc "$@" \
    --plugin=protoc-gen-swift="$gen_swift" \
    --swift_out="$tmp" --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
    --plugin=protoc-gen-grpc-swift-2="$gen_grpc" \
    --grpc-swift-2_out="$tmp" --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_opt=UseAccessLevelOnImports=true \
    --grpc-swift-2_opt=Client=false --grpc-swift-2_opt=Server=true \
    --grpc-swift-2_opt=ExtraModuleImports="$module"
}
