public import Foundation

/// Where the package's files and built products are, seen from a test or a benchmark.
public enum PackagePaths {
    /// The package root: …/Sources/AccelMetricsTesting/PackagePaths.swift, three levels up.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A file under the package root (`scripts/test-pki.sh`, `Tests/Fixtures/nvml/h100x8.nvml`).
    public static func file(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// A built product (`accel-exporter`, `libFakeNVML.so`).
    ///
    /// `ACCEL_BIN_DIR` wins; otherwise the products sit next to the test bundle (`.build/<config>/`), found from the
    /// runner's own path, so a release test run uses release products; `.build/debug` is the last resort.
    public static func product(_ name: String) -> String {
        if let directory = ProcessInfo.processInfo.environment["ACCEL_BIN_DIR"] { return directory + "/" + name }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/\(name)").path
    }

    /// The first `name` on `PATH` (kubectl, promtool), or nil when it is not installed.
    public static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
