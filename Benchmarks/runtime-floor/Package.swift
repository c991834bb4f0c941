// swift-tools-version:6.0
// Benchmarks/runtime-floor.sh's probes: what a Swift program on accel-exporter's runtime and libraries holds in
// memory before it does any work. Not part of the product.
import PackageDescription

let package = Package(
    name: "runtime-floor",
    targets: [
        // /proc/self/status and the start-up trim, in C so the bare probe needs nothing but libc.
        .target(name: "CFloorProbe"),
        // The system libraries accel-exporter links (its NEEDED entries; runtime-floor.sh compares the two lists).
        .target(name: "CFloorLibraries", linkerSettings: [
            .linkedLibrary("curl-gnutls"), .linkedLibrary("microhttpd"), .linkedLibrary("gnutls"), .linkedLibrary("sensors"),
            .linkedLibrary("yaml"), .linkedLibrary("z"), .linkedLibrary("crypt"), .linkedLibrary("m"),
        ]),
        // The same libraries loaded with dlopen after a trim (no link-time dependency on them).
        .target(name: "CFloorDeferred"),
        .executableTarget(name: "floor-bare", dependencies: ["CFloorProbe"]),
        .executableTarget(name: "floor-essentials", dependencies: ["CFloorProbe"]),
        .executableTarget(name: "floor-libraries", dependencies: ["CFloorProbe", "CFloorLibraries"]),
        .executableTarget(name: "floor-deferred", dependencies: ["CFloorProbe", "CFloorDeferred"]),
    ]
)
