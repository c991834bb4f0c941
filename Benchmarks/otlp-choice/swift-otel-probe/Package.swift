// swift-tools-version:6.2
// The OTLP push through swift-otel 1.6.0: its OTLP message types are `package`-level, so the only way in is its
// swift-metrics backend — one swift-metrics Gauge or FloatingPointCounter per series, updated every tick, exported by
// its OTLP/HTTP exporter (trait OTLPHTTP only, no gRPC). Built and run by Benchmarks/otlp-choice.sh.
import PackageDescription

let package = Package(
    name: "otlp-choice-swift-otel",
    platforms: [.macOS("15.0")],
    dependencies: [
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The exporter's Exposition (through the symlink in Sources/), only to parse the node's exposition, as the
        // generated probe does.
        .target(name: "Exposition", dependencies: ["CZlib"]),
        .target(name: "ProbeSupport", dependencies: ["Exposition"]),
        .executableTarget(
            name: "otlp-choice-swift-otel",
            dependencies: [
                "Exposition", "ProbeSupport",
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
