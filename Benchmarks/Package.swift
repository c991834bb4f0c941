// swift-tools-version:6.1
// Speed and memory of the exporter's hot paths, measured with ordo-one/benchmark (never as timed unit tests).
// Run: cd Benchmarks && swift package --disable-sandbox benchmark
import PackageDescription

let package = Package(
    name: "AccelMetricsBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "AccelMetrics", path: "../"),
        // Only the malloc interposer (mallocCountTotal); no jemalloc is needed on Linux with Swift 6.3.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "ExporterBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Exposition", package: "AccelMetrics"),
                .product(name: "Accelerators", package: "AccelMetrics"),
                .product(name: "DeviceSimulation", package: "AccelMetrics"),
                // Built beside the executable and dlopen()ed by path, as the exporter opens libnvidia-ml.
                .product(name: "FakeNVML", package: "AccelMetrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ExporterBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
