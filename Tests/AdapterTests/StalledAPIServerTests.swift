import AccelMetricsTesting
import Foundation
import Testing

/// Issue 15, case 5: an API server that accepts connections and never answers. Requests carrying bearer tokens need
/// a TokenReview from it; they must fail (503) within a deadline and never hold every HTTP worker, so `/livez`
/// keeps answering and the kubelet never restarts a healthy adapter.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class StalledAPIServerTests {
    let pki: TemporaryDirectory
    let listener: LoopbackListener
    let apiPort: Int

    init() throws {
        pki = TemporaryDirectory(prefix: "accel-stall")
        let (_, err, status) = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, pki.path])
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }
        // The stalled API server: the kernel accepts connections into the backlog; nobody ever reads or answers.
        listener = try LoopbackListener(backlog: 256)
        apiPort = listener.port
    }

    @Test func tokenReviewsAgainstAStalledAPIServerNeverTakeTheAdapterDown() throws {
        let exporter = try FakeExporter(FakeNode.reference)
        let kubeconfig = try writeKubeconfig(
            in: pki, server: "http://127.0.0.1:\(apiPort)", user: "adapter", token: "adapter-token", namespace: "accel-metrics")
        let port = try freePort()
        let adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "\(port)", "--bind-address", "127.0.0.1",
                "--tls-cert-file", pki.url("server.pem").path,
                "--tls-private-key-file", pki.url("server.key").path,
                "--requestheader-client-ca-file", pki.url("proxy-ca.pem").path,
                "--requestheader-allowed-names", "front-proxy-client",
                "--kubeconfig", kubeconfig.path, "--exporters.targets", exporter.address, "--metric-resolution", "250ms",
            ])
        defer { adapter.stop() }
        try adapter.waitFor("accel-metrics-adapter started", timeout: 30)

        func curl(_ path: String, token: String?, seconds: Int) throws -> ManagedProcess {
            var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "\(seconds)", "--cacert", pki.url("ca.pem").path]
            if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
            return try ManagedProcess("/usr/bin/curl", arguments + ["https://127.0.0.1:\(port)\(path)"], stderr: .discard)
        }
        func code(_ process: ManagedProcess) -> String {
            process.waitUntilExit()
            return process.output
        }

        // 32 requests, each with its own token (no cache hit), all needing a TokenReview.
        let began = Date()
        let flood = try (0..<32).map { try curl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization", token: "token-\($0)", seconds: 30) }
        Thread.sleep(forTimeInterval: 0.5)
        // Health never waits on the API server.
        for _ in 0..<5 {
            let started = Date()
            #expect(code(try curl("/livez", token: nil, seconds: 2)) == "200")
            #expect(code(try curl("/healthz", token: nil, seconds: 2)) == "200")
            #expect(Date().timeIntervalSince(started) < 2)
            Thread.sleep(forTimeInterval: 0.3)
        }
        // Every flooded request failed with 503 at the review deadline, none hung and none was dropped: no worker
        // thread waits on a review (the connections are suspended), so none queues behind another.
        let codes = flood.map(code)
        #expect(codes.allSatisfy { $0 == "503" }, "\(codes)")
        // Well inside curl's own 30 s limit: the review deadline ended each one (a loaded machine adds a little).
        #expect(Date().timeIntervalSince(began) < 25)
        #expect(adapter.log.contains("the API server did not answer its review in time"))
    }
}
