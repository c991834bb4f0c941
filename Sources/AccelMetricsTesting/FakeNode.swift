import Synchronization

/// A node as an exporter would describe it, written out as exporter-shaped exposition text. Tests state the raw
/// readings here and derive the expected adapter answers from them by hand.
public struct FakeNode: Sendable {
    public struct Device: Sendable {
        public var id: String
        public var utilization: Double?
        public var memoryUsed: Double?
        public var memoryTotal: Double?
        public var temperatures: [String: Double] = [:]
        public var power: Double?
        /// MIG parent: a partition.
        public var parent: String?
        public var model = "H100 80GB HBM3"
        /// GPM saturation: share of SMs busy and pipe activity by `pipe` (0..1).
        public var smActive: Double?
        public var pipes: [String: Double] = [:]

        public init(id: String, utilization: Double? = nil, memoryUsed: Double? = nil, memoryTotal: Double? = nil,
                    temperatures: [String: Double] = [:], power: Double? = nil, parent: String? = nil, model: String = "H100 80GB HBM3",
                    smActive: Double? = nil, pipes: [String: Double] = [:]) {
            self.id = id
            self.utilization = utilization
            self.memoryUsed = memoryUsed
            self.memoryTotal = memoryTotal
            self.temperatures = temperatures
            self.power = power
            self.parent = parent
            self.model = model
            self.smActive = smActive
            self.pipes = pipes
        }
    }

    public struct Share: Sendable {
        public var namespace: String
        public var pod: String
        public var container: String
        public var device: String
        public var utilization: Double?
        public var memory: Double?

        public init(namespace: String, pod: String, container: String, device: String, utilization: Double? = nil, memory: Double? = nil) {
            self.namespace = namespace
            self.pod = pod
            self.container = container
            self.device = device
            self.utilization = utilization
            self.memory = memory
        }
    }

    public var name: String
    public var devices: [Device]
    /// Allocations (`accelerator_allocated`): (namespace, pod, container, device).
    public var allocations: [(String, String, String, String)] = []
    public var shares: [Share] = []
    /// Unix seconds of the sample; nil leaves the self-metric out.
    public var sampleTime: Double?

    public init(name: String, devices: [Device], allocations: [(String, String, String, String)] = [], shares: [Share] = [],
                sampleTime: Double? = nil) {
        self.name = name
        self.devices = devices
        self.allocations = allocations
        self.shares = shares
        self.sampleTime = sampleTime
    }

    /// The node's readings as an exporter's text exposition.
    public func exposition() -> String {
        var lines: [String] = []
        func labels(_ device: Device) -> String {
            "accelerator=\"\(device.id)\",model=\"\(device.model)\",vendor=\"nvidia\""
        }
        lines.append("# TYPE accelerator_info gauge")
        for device in devices {
            let parent = device.parent.map { ",parent=\"\($0)\"" } ?? ""
            lines.append("accelerator_info{\(labels(device)),node=\"\(name)\"\(parent)} 1")
        }
        lines.append("# TYPE accelerator_utilization_ratio gauge")
        for device in devices { if let v = device.utilization { lines.append("accelerator_utilization_ratio{\(labels(device))} \(v)") } }
        lines.append("# TYPE accelerator_memory_used_bytes gauge")
        for device in devices {
            if let v = device.memoryUsed { lines.append("accelerator_memory_used_bytes{\(labels(device)),memory=\"vram\"} \(v)") }
            // A second memory kind that must not count as VRAM.
            lines.append("accelerator_memory_used_bytes{\(labels(device)),memory=\"gtt\"} 1e9")
        }
        lines.append("# TYPE accelerator_memory_total_bytes gauge")
        for device in devices {
            if let v = device.memoryTotal { lines.append("accelerator_memory_total_bytes{\(labels(device)),memory=\"vram\"} \(v)") }
            lines.append("accelerator_memory_total_bytes{\(labels(device)),memory=\"gtt\"} 6.4e10")
        }
        lines.append("# TYPE accelerator_temperature_celsius gauge")
        for device in devices {
            for (sensor, v) in device.temperatures.sorted(by: { $0.key < $1.key }) {
                lines.append("accelerator_temperature_celsius{\(labels(device)),sensor=\"\(sensor)\"} \(v)")
            }
        }
        lines.append("# TYPE accelerator_power_watts gauge")
        for device in devices { if let v = device.power { lines.append("accelerator_power_watts{\(labels(device))} \(v)") } }
        lines.append("# TYPE accelerator_sm_active_ratio gauge")
        for device in devices { if let v = device.smActive { lines.append("accelerator_sm_active_ratio{\(labels(device))} \(v)") } }
        lines.append("# TYPE accelerator_pipe_active_ratio gauge")
        for device in devices {
            for (pipe, v) in device.pipes.sorted(by: { $0.key < $1.key }) {
                lines.append("accelerator_pipe_active_ratio{\(labels(device)),pipe=\"\(pipe)\"} \(v)")
            }
        }
        lines.append("# TYPE accelerator_allocated gauge")
        for (namespace, pod, container, device) in allocations {
            lines.append(
                "accelerator_allocated{accelerator=\"\(device)\",container=\"\(container)\",model=\"H100 80GB HBM3\",namespace=\"\(namespace)\",pod=\"\(pod)\",vendor=\"nvidia\"} 1")
        }
        lines.append("# TYPE accelerator_pod_utilization_ratio gauge")
        for share in shares {
            if let v = share.utilization {
                lines.append(
                    "accelerator_pod_utilization_ratio{accelerator=\"\(share.device)\",container=\"\(share.container)\",model=\"H100 80GB HBM3\",namespace=\"\(share.namespace)\",pod=\"\(share.pod)\",vendor=\"nvidia\"} \(v)")
            }
        }
        lines.append("# TYPE accelerator_pod_memory_used_bytes gauge")
        for share in shares {
            if let v = share.memory {
                lines.append(
                    "accelerator_pod_memory_used_bytes{accelerator=\"\(share.device)\",container=\"\(share.container)\",model=\"H100 80GB HBM3\",namespace=\"\(share.namespace)\",pod=\"\(share.pod)\",vendor=\"nvidia\"} \(v)")
            }
        }
        if let sampleTime {
            lines.append("# TYPE accel_exporter_last_sample_timestamp_seconds gauge")
            lines.append("accel_exporter_last_sample_timestamp_seconds \(sampleTime)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension FakeNode {
    /// When ``reference`` was sampled: 2027-01-15T08:00:00Z.
    public static let referenceSampleTime = 1_800_000_000.0

    /// The node the adapter's tests share, in process and end to end: four GPUs and a MIG partition, with
    /// allocations and per-pod shares; the tests derive every expected answer from these readings by hand.
        public static let reference = FakeNode(
            name: "node-a",
            devices: [
                .init(id: "GPU-A", utilization: 0.90, memoryUsed: 40e9, memoryTotal: 80e9, temperatures: ["gpu": 61, "memory": 70], power: 300,
                      smActive: 0.80, pipes: ["tensor": 0.50, "tensor_hmma": 0.45, "fp32": 0.10]),
                .init(id: "GPU-B", utilization: 0.50, memoryUsed: 20e9, memoryTotal: 80e9, temperatures: ["gpu": 55], power: 200,
                      smActive: 0.40, pipes: ["tensor": 0.20]),
                // No tensor figure (a GPU whose driver refuses that metric).
                .init(id: "GPU-C", utilization: 0.20, memoryUsed: 30e9, memoryTotal: 80e9, temperatures: ["gpu": 50], power: 150,
                      smActive: 0.10),
                // MIG mode: the parent has no utilization; its partition is its own accelerator.
                .init(id: "GPU-D", utilization: nil, memoryUsed: 10e9, memoryTotal: 80e9, temperatures: ["gpu": 40], power: 100,
                      smActive: 0.30),
                .init(id: "MIG-1", utilization: nil, memoryUsed: 5e9, memoryTotal: 40e9, parent: "GPU-D",
                      smActive: 0.60, pipes: ["tensor": 0.25]),
            ],
            allocations: [
                ("ml", "train-0", "main", "GPU-A"), ("ml", "train-0", "main", "GPU-B"),
                ("ml", "infer-0", "server", "GPU-C"),
                ("ml", "infer-1", "c1", "GPU-C"), ("ml", "infer-1", "c2", "GPU-C"),
                ("other", "job-0", "main", "MIG-1"),
            ],
            shares: [
                .init(namespace: "ml", pod: "train-0", container: "main", device: "GPU-A", utilization: 0.90, memory: 40e9),
                .init(namespace: "ml", pod: "train-0", container: "main", device: "GPU-B", utilization: 0.50, memory: 20e9),
                .init(namespace: "ml", pod: "infer-0", container: "server", device: "GPU-C", utilization: 0.15, memory: 20e9),
                .init(namespace: "ml", pod: "infer-1", container: "c1", device: "GPU-C", utilization: 0.03, memory: 6e9),
                .init(namespace: "ml", pod: "infer-1", container: "c2", device: "GPU-C", utilization: 0.02, memory: 4e9),
                .init(namespace: "other", pod: "job-0", container: "main", device: "MIG-1", utilization: nil, memory: 5e9),
            ],
            sampleTime: referenceSampleTime)
}

/// A clock tests move by hand.
public final class TestClock: Sendable {
    private let seconds: Mutex<Double>
    public init(_ start: Double) { seconds = Mutex(start) }
    public var now: Double { seconds.withLock { $0 } }
    public func advance(_ delta: Double) { seconds.withLock { $0 += delta } }
}
