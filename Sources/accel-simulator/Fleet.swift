import ArgumentParser
import Dispatch
import HTTPServer
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `accel-simulator fleet`: many exporters from one process, for the adapter's scale benchmark. One HTTP server
/// on 0.0.0.0:PORT answers as a different node for each loopback address it is reached at (127.0.x.y), with
/// exporter-shaped text: 8 GPUs, 10 pods with their own share, and a fresh sample time on every scrape.
/// `GET /control/bump?node=NAME&value=V` sets that node's pod utilization (for freshness measurements).
struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve N simulated exporters on 127.0.x.y:PORT (one process).")

    @Option(help: "How many exporters (at most 60000).")
    var exporters = 1000

    @Option(help: "The port every simulated exporter listens on.")
    var port = 19900

    @Option(help: "Pods per node (each holds one GPU's share).")
    var pods = 10

    func run() throws {
        let count = max(1, min(exporters, 60000))
        let podsPerNode = pods
        let bumps = Bumps()
        let server = HTTPServer(
            configuration: .init(host: "0.0.0.0", port: port, threads: 4, connectionLimit: 4096),
            logger: Logger(label: "fleet"),
            handler: { request in
                if request.path == "/control/bump" {
                    var node = "", value = 0.0
                    for pair in request.query.split(separator: "&") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        guard parts.count == 2 else { continue }
                        if parts[0] == "node" { node = String(parts[1]) }
                        if parts[0] == "value" { value = Double(parts[1]) ?? 0 }
                    }
                    bumps.set(node, value)
                    return .text("ok\n")
                }
                guard request.path == "/metrics", let host = request.header("Host") else { return .notFound }
                let address = host.split(separator: ":").first.map(String.init) ?? host
                let octets = address.split(separator: ".").compactMap { Int($0) }
                guard octets.count == 4, octets[0] == 127 else { return .notFound }
                let index = (octets[2] << 8 | octets[3]) - 1
                guard index >= 0, index < count else { return .notFound }
                return .text(Self.exposition(node: "node-\(index)", pods: podsPerNode, bump: bumps.value(for: "node-\(index)")))
            })
        try server.start()
        print("fleet: \(count) exporters on 127.0.x.y:\(server.port)")
        dispatchMain()
    }

    static func exposition(node: String, pods: Int, bump: Double?) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var lines: [String] = []
        lines.reserveCapacity(16 + pods * 6)
        lines.append("# TYPE accelerator_info gauge")
        for gpu in 0..<8 {
            lines.append("accelerator_info{accelerator=\"\(node)-gpu\(gpu)\",model=\"H100 80GB HBM3\",node=\"\(node)\",vendor=\"nvidia\"} 1")
        }
        lines.append("# TYPE accelerator_utilization_ratio gauge")
        for gpu in 0..<8 { lines.append("accelerator_utilization_ratio{accelerator=\"\(node)-gpu\(gpu)\",model=\"H100 80GB HBM3\",vendor=\"nvidia\"} 0.5") }
        lines.append("# TYPE accelerator_memory_total_bytes gauge")
        for gpu in 0..<8 { lines.append("accelerator_memory_total_bytes{accelerator=\"\(node)-gpu\(gpu)\",memory=\"vram\",model=\"H100 80GB HBM3\",vendor=\"nvidia\"} 8.5e10") }
        lines.append("# TYPE accelerator_power_watts gauge")
        for gpu in 0..<8 { lines.append("accelerator_power_watts{accelerator=\"\(node)-gpu\(gpu)\",model=\"H100 80GB HBM3\",vendor=\"nvidia\"} 400") }
        lines.append("# TYPE accelerator_allocated gauge")
        lines.append("# TYPE accelerator_pod_utilization_ratio gauge")
        var shares: [String] = []
        var allocations: [String] = []
        for pod in 0..<pods {
            let labels = "accelerator=\"\(node)-gpu\(pod % 8)\",container=\"main\",model=\"H100 80GB HBM3\",namespace=\"fleet\",pod=\"\(node)-pod\(pod)\",vendor=\"nvidia\""
            allocations.append("accelerator_allocated{\(labels)} 1")
            shares.append("accelerator_pod_utilization_ratio{\(labels)} \(bump ?? 0.25)")
        }
        lines.insert(contentsOf: allocations, at: lines.count - 1)
        lines += shares
        lines.append("# TYPE accel_exporter_last_sample_timestamp_seconds gauge")
        lines.append("accel_exporter_last_sample_timestamp_seconds \(Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)")
        return lines.joined(separator: "\n") + "\n"
    }
}

final class Bumps: Sendable {
    private let table = Mutex<[String: Double]>([:])
    func set(_ node: String, _ value: Double) { table.withLock { $0[node] = value } }
    func value(for node: String) -> Double? { table.withLock { $0[node] } }
}
