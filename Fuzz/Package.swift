// swift-tools-version:6.1
// libFuzzer over every parser that takes outside bytes (the root package's FuzzTargets), one binary for all targets.
// Build and run: `make fuzz` (scripts/fuzz.sh); the corpora in Corpus/ are replayed by `make test` without a sanitizer.
import PackageDescription

let package = Package(
    name: "AccelMetricsFuzz",
    dependencies: [
        .package(name: "AccelMetrics", path: "../"),
    ],
    targets: [
        // libFuzzer's driver, declared for Swift (the library itself comes with -sanitize=fuzzer).
        .target(name: "CLibFuzzer"),
        // Built with `-sanitize=fuzzer,address` for every module (scripts/fuzz.sh). Its main picks the target from
        // FUZZ_TARGET and runs libFuzzer's driver on it.
        .executableTarget(
            name: "accel-fuzz",
            dependencies: ["CLibFuzzer", .product(name: "FuzzTargets", package: "AccelMetrics")],
            // SwiftPM renames the entry point and aliases main to it; libFuzzer's archive brings a main of its own.
            // gold fails on the pair (an internal error); lld lets the alias win.
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
        ),
    ]
)
