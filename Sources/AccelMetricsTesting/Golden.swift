public import Foundation
public import Testing

/// Compares `actual` with the committed golden file at `relativePath` (under the package root, e.g.
/// `Tests/Fixtures/golden/mi300x-8.prom`); with `UPDATE_GOLDEN` set in the environment it first rewrites the file,
/// so the diff shows up in `git diff` for review. Returns the file's content (for linting it further).
@discardableResult
public func expectMatchesGolden(
    _ actual: String, _ relativePath: String, what: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) throws -> String {
    let file = PackagePaths.file(relativePath)
    if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] != nil {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try actual.write(to: file, atomically: false, encoding: .utf8)
    }
    let expected = try String(contentsOf: file, encoding: .utf8)
    #expect(
        actual == expected,
        "\(what ?? "golden mismatch for \(file.deletingPathExtension().lastPathComponent)"); re-record with UPDATE_GOLDEN=1 after checking the diff",
        sourceLocation: sourceLocation)
    return expected
}
