import Foundation
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
    if actual != expected {
        Issue.record(
            """
            \(what ?? "golden mismatch for \(file.deletingPathExtension().lastPathComponent)"); re-record with UPDATE_GOLDEN=1 after \
            checking the diff
            \(goldenDifference(expected: expected, actual: actual))
            """,
            sourceLocation: sourceLocation)
    }
    return expected
}

/// The lines only the golden file has (`-`) and only the actual text has (`+`), each in its file's order; or, when
/// both hold the same lines, where the order first differs.
func goldenDifference(expected: String, actual: String) -> String {
    let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
    let expectedSet = Set(expectedLines), actualSet = Set(actualLines)
    let missing = expectedLines.filter { !actualSet.contains($0) }.map { "- \($0)" }
    let extra = actualLines.filter { !expectedSet.contains($0) }.map { "+ \($0)" }
    if missing.isEmpty && extra.isEmpty {
        let shorter = min(expectedLines.count, actualLines.count)
        let index = (0..<shorter).first { expectedLines[$0] != actualLines[$0] } ?? shorter
        return "the same lines in another order (or repeated): first difference at line \(index + 1)"
    }
    return (missing + extra).joined(separator: "\n")
}
