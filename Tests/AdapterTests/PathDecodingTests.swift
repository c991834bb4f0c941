import AccelMetricsTesting
import Foundation
import Testing

/// Issue 15, case 7: a request path is percent-decoded once. `%2A` is the wildcard; `%252A` is a pod literally
/// named `%2A` (which no pod can be), never the wildcard decoded twice.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct PathDecodingTests {
    @Test func pathsAreDecodedOnce() throws {
        var node = FakeNode.reference
        node.sampleTime = Date().timeIntervalSince1970
        let exporter = try FakeExporter(node)
        let port = try freePort()
        let adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            ["--secure-port", "0", "--insecure-port", "\(port)", "--bind-address", "127.0.0.1", "--exporters.targets", exporter.address,
             "--metric-resolution", "100ms"])
        defer { adapter.stop() }
        try adapter.waitFor("accel-metrics-adapter started")
        func get(_ path: String) throws -> (code: String, body: String) {
            let (out, _, _) = try runProgram("/usr/bin/curl", ["-s", "--path-as-is", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
            let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
            return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
        }
        let base = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/"
        var wildcard = (code: "", body: "")
        _ = try eventually(timeout: 10, pollInterval: 0.1) {
            wildcard = try get(base + "%2A/gpu_utilization")
            return wildcard.body.contains("\"items\":[{")
        }
        #expect(wildcard.code == "200")
        #expect(wildcard.body.contains("\"items\":[{"), "\(wildcard.body)")
        let twice = try get(base + "%252A/gpu_utilization")
        #expect(twice.code != "200", "\(twice.body)")
        #expect(!twice.body.contains("\"items\":[{"))
    }
}
