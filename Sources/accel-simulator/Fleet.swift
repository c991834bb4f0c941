import ArgumentParser
import Dispatch
import Exposition
import HTTPServer
import Logging
import Synchronization
import MetricSchema
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
        let model = "H100 80GB HBM3"
        func device(_ gpu: Int) -> [Label] {
            [Label(SchemaLabel.accelerator, "\(node)-gpu\(gpu)"), Label(SchemaLabel.vendor, "nvidia"), Label(SchemaLabel.model, model),
             Label(SchemaLabel.pciBusID, "0000:\(String(0x18 + 0x10 * gpu, radix: 16)):00.0")]
        }
        let gpus = 0..<8
        var families = [
            Families.Device.info.family(gpus.map { Sample(labels: device($0) + [Label("node", node)], value: 1) }),
            Families.Device.utilization.family(gpus.map { Sample(labels: device($0), value: 0.5) }),
            Families.Device.memoryTotal.family(gpus.map { Sample(labels: device($0) + [Label("memory", "vram")], value: 8.5e10) }),
            Families.Device.power.family(gpus.map { Sample(labels: device($0), value: 400) }),
        ]
        var allocated = Families.Pod.allocated.family()
        var shares = Families.Pod.utilization.family()
        for pod in 0..<pods {
            let labels = device(pod % 8) + [
                Label(SchemaLabel.namespace, "fleet"), Label(SchemaLabel.pod, "\(node)-pod\(pod)"), Label(SchemaLabel.container, "main"),
            ]
            allocated.samples.append(Sample(labels: labels, value: 1))
            shares.samples.append(Sample(labels: labels, value: bump ?? 0.25))
        }
        families += [
            allocated, shares,
            Families.Exporter.lastSampleTimestamp.family([Sample(labels: [], value: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)]),
        ]
        var bytes: [UInt8] = []
        ExpositionEncoder.encode(families, format: .text, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

final class Bumps: Sendable {
    private let table = Mutex<[String: Double]>([:])
    func set(_ node: String, _ value: Double) { table.withLock { $0[node] = value } }
    func value(for node: String) -> Double? { table.withLock { $0[node] } }
}
