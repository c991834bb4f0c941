// swift-tools-version:6.1
// The OTLP push as the exporter does it: the tick's families through OTLPExport's MetricsRequestBuilder and OTLPPusher,
// taken from the root package as its `OTLPExport` product (only that target and what it needs are built). Built and
// run by Benchmarks/otlp-choice.sh.
import PackageDescription

let package = Package(
    name: "otlp-choice-generated",
    dependencies: [
        .package(name: "AccelMetrics", path: "../../.."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // The probes' shared tick and fixture reading (a symlink to ../Shared/ProbeSupport).
        .target(name: "ProbeSupport", dependencies: [.product(name: "Exposition", package: "AccelMetrics")]),
        .executableTarget(
            name: "otlp-choice-generated",
            dependencies: [
                "ProbeSupport",
                .product(name: "Exposition", package: "AccelMetrics"),
                .product(name: "OTLPExport", package: "AccelMetrics"),
                .product(name: "Logging", package: "swift-log"),
            ]
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
