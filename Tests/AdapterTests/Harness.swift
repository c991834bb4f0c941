import AccelMetricsTesting
import Foundation
import HTTPServer
import Logging
import Synchronization
import Testing

/// Every program the adapter tests run sees `KUBECONFIG=/nonexistent`, so neither kubectl nor the adapter ever
/// reaches a developer's own cluster.
@discardableResult
func runProgram(_ executable: String, _ arguments: [String], timeout: Double = 30) throws -> (out: String, err: String, status: Int32) {
    try AccelMetricsTesting.runProgram(executable, arguments, environment: ["KUBECONFIG": "/nonexistent"], timeout: timeout)
}

/// An exporter stand-in on loopback serving exporter-shaped text that tests change while the adapter scrapes it;
/// optionally slow. Served by the project's own HTTP server.
final class FakeExporter: Sendable {
    private final class Content: Sendable {
        let body: Mutex<String>
        let delaySeconds: Mutex<Double>
        init(body: String, delaySeconds: Double) {
            self.body = Mutex(body)
            self.delaySeconds = Mutex(delaySeconds)
        }
    }

    let server: HTTPServer
    private let content: Content

    init(_ node: FakeNode, delaySeconds: Double = 0) throws {
        let content = Content(body: node.exposition(), delaySeconds: delaySeconds)
        self.content = content
        server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, threads: 2), logger: Logger(label: "fake-exporter"),
            handler: { request in
                let wait = content.delaySeconds.withLock { $0 }
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                guard request.path == "/metrics" else { return .notFound }
                return .text(content.body.withLock { $0 })
            })
        try server.start()
    }

    var address: String { "127.0.0.1:\(server.port)" }

    func publish(_ node: FakeNode) {
        publish(text: node.exposition())
    }

    func publish(text: String) {
        content.body.withLock { $0 = text }
    }

    deinit { server.stop() }
}
