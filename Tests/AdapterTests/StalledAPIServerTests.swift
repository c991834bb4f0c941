import Foundation
import Testing

/// Issue 15, case 5: an API server that accepts connections and never answers. Requests carrying bearer tokens need
/// a TokenReview from it; they must fail (503) within a deadline and never hold every HTTP worker, so `/livez`
/// keeps answering and the kubelet never restarts a healthy adapter.
@Suite(.serialized) final class StalledAPIServerTests {
    let pki: URL
    let listener: Int32
    let apiPort: Int

    init() throws {
        pki = try Harness.temporaryDirectory("accel-stall")
        let (_, err, status) = try runProgram("/bin/bash", [Harness.packageRoot.appendingPathComponent("scripts/test-pki.sh").path, pki.path])
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }
        // The stalled API server: the kernel accepts connections into the backlog; nobody ever reads or answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listener = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 256) == 0 else { throw HarnessError("cannot listen") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        apiPort = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(listener)
        try? FileManager.default.removeItem(at: pki)
    }

    @Test func tokenReviewsAgainstAStalledAPIServerNeverTakeTheAdapterDown() throws {
        let exporter = try FakeExporter(MetricsAPITests.node)
        let kubeconfig = pki.appendingPathComponent("kubeconfig")
        try """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters: [{name: stalled, cluster: {server: "http://127.0.0.1:\(apiPort)"}}]
            users: [{name: adapter, user: {token: adapter-token}}]
            contexts: [{name: test, context: {cluster: stalled, user: adapter, namespace: accel-metrics}}]
            """.write(to: kubeconfig, atomically: false, encoding: .utf8)
        let port = try Harness.freePort()
        let adapter = try BackgroundProcess(
            Harness.binary("accel-metrics-adapter"),
            [
                "--secure-port", "\(port)", "--bind-address", "127.0.0.1",
                "--tls-cert-file", pki.appendingPathComponent("server.pem").path,
                "--tls-private-key-file", pki.appendingPathComponent("server.key").path,
                "--requestheader-client-ca-file", pki.appendingPathComponent("proxy-ca.pem").path,
                "--requestheader-allowed-names", "front-proxy-client",
                "--kubeconfig", kubeconfig.path, "--exporters.targets", exporter.address, "--metric-resolution", "250ms",
            ])
        defer { adapter.stop() }
        try adapter.waitForLog("accel-metrics-adapter started", timeout: 30)

        func curl(_ path: String, token: String?, seconds: Int) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "\(seconds)", "--cacert", pki.appendingPathComponent("ca.pem").path]
            if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
            process.arguments = arguments + ["https://127.0.0.1:\(port)\(path)"]
            process.standardOutput = Pipe()
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        func code(_ process: Process) -> String {
            process.waitUntilExit()
            let data = (process.standardOutput as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
            return String(decoding: data, as: UTF8.self)
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
