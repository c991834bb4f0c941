import DeviceSimulation
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
/// `--flap-period` takes a share of the nodes down in turns (they answer 503 and close the connection, as an
/// exporter behind a dying pod's Service might), `--vary` moves every pod's value each second; both follow
/// `FleetSchedule`, which benchmarks use to know what the fleet served when.
struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve N simulated exporters on 127.0.x.y:PORT (one process).")

    @Option(help: "How many exporters (at most 60000).")
    var exporters = 1000

    @Option(help: "The port every simulated exporter listens on.")
    var port = 19900

    @Option(help: "Pods per node (each holds one GPU's share).")
    var pods = 10

    @Option(help: "Node names are PREFIX-INDEX (fleets run side by side need different prefixes).")
    var nodePrefix = "node"

    @Option(help: "Seconds per flap round: each round a different share of the nodes is down (0: none ever is).")
    var flapPeriod = 0.0

    @Option(help: "Share of the nodes down in each flap round.")
    var flapFraction = 0.1

    @Flag(help: "Pod utilization changes every second (FleetSchedule's formula) instead of a fixed 0.25.")
    var vary = false

    func validate() throws {
        guard flapPeriod >= 0 else { throw ValidationError("--flap-period must be 0 or more") }
        guard flapFraction > 0, flapFraction <= 1 else { throw ValidationError("--flap-fraction must be in (0, 1]") }
        guard !nodePrefix.isEmpty else { throw ValidationError("--node-prefix must not be empty") }
    }

    func run() throws {
        let count = max(1, min(exporters, 60000))
        let podsPerNode = pods
        let prefix = nodePrefix
        let schedule = FleetSchedule(flapPeriod: flapPeriod, flapFraction: flapFraction, vary: vary)
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
                let now = Self.unixTime()
                if schedule.isDown(index: index, time: now) {
                    return HTTPResponse(
                        status: 503, headers: [("Connection", "close")], body: ResponseBody(string: "node down (flapping)\n"))
                }
                let node = "\(prefix)-\(index)"
                let bump = bumps.value(for: node)
                return .text(Self.exposition(node: node, pods: podsPerNode, time: now) { pod in
                    bump ?? schedule.podUtilization(index: index, pod: pod, time: now)
                })
            })
        try server.start()
        print("fleet: \(count) exporters on 127.0.x.y:\(server.port)")
        fflush(nil)  // all streams: the line must reach a pipe or file before dispatchMain blocks
        dispatchMain()
    }

    static func unixTime() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// One node's exposition at unix time `time`; `utilization` gives each pod's share.
    static func exposition(node: String, pods: Int, time: Double, utilization: (Int) -> Double) -> String {
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
            shares.samples.append(Sample(labels: labels, value: utilization(pod)))
        }
        families += [
            allocated, shares,
            Families.Exporter.lastSampleTimestamp.family([Sample(labels: [], value: time)]),
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
