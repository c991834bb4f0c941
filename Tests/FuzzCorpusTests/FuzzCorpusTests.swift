import AccelMetricsTesting
import Foundation
import FuzzTargets
import Testing

/// `Fuzz/Corpus/<target>/`: seeds and minimized findings, replayed through every target on each test run, without a
/// sanitizer (`make fuzz` runs them under libFuzzer and ASan). A crash here is a crash of the parser; a recorded issue
/// is an invariant an input breaks.
@Suite struct FuzzCorpusTests {
    static let corpus = PackagePaths.file("Fuzz/Corpus")

    static func files(_ target: String) throws -> [URL] {
        let folder = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func corpusReplays(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let files = try Self.files(name)
        #expect(!files.isEmpty, "Fuzz/Corpus/\(name) holds no input")
        for file in files {
            let bytes = Array(try Data(contentsOf: file))
            #expect(bytes.count <= target.maxLength, "\(name)/\(file.lastPathComponent) is longer than -max_len \(target.maxLength)")
            do {
                try target.run(bytes)
            } catch {
                Issue.record("\(name)/\(file.lastPathComponent): \(error)")
            }
        }
    }

    @Test func everyCorpusFolderHasATarget() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).filter { !$0.hasPrefix(".") }
        #expect(Set(folders) == Set(FuzzTargets.all.map(\.name)))
    }
}
