// swift-tools-version:6.1
// The OTLP push as the exporter does it: the tick's families through OTLPExport's MetricsRequestBuilder and OTLPPusher
// (messages generated once by scripts/generate-otlp.sh). The exporter's own sources are reached through the symlinks
// in Sources/; dependencies are the root manifest's versions. Built and run by Benchmarks/otlp-choice.sh.
import PackageDescription

let package = Package(
    name: "otlp-choice-generated",
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Exposition", dependencies: ["CZlib"]),
        .target(name: "MetricSchema", dependencies: ["Exposition"]),
        .target(name: "ScrapeClient"),
        .target(name: "ProbeSupport", dependencies: ["Exposition"]),
        .target(
            name: "OTLPProto",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .target(
            name: "OTLPExport",
            dependencies: [
                "Exposition", "MetricSchema", "OTLPProto", "ScrapeClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "otlp-choice-generated",
            dependencies: ["Exposition", "OTLPExport", "ProbeSupport", .product(name: "Logging", package: "swift-log")]
        ),
    ]
)

// The root manifest's strict settings, which the shared sources are written for.
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
