@testable import AdapterSources
@testable import AdapterStore
@testable import AggregatedAPI
import Exposition

/// A node as an exporter would describe it, written out as exporter-shaped exposition text. Tests state the raw
/// readings here and derive the expected adapter answers from them by hand.
struct FakeNode {
    struct Device {
        var id: String
        var utilization: Double?
        var memoryUsed: Double?
        var memoryTotal: Double?
        var temperatures: [String: Double] = [:]
        var power: Double?
        /// MIG parent: a partition.
        var parent: String?
        var model = "H100 80GB HBM3"
        /// GPM saturation: share of SMs busy and pipe activity by `pipe` (0..1).
        var smActive: Double?
        var pipes: [String: Double] = [:]
    }

    struct Share {
        var namespace: String
        var pod: String
        var container: String
        var device: String
        var utilization: Double?
        var memory: Double?
    }

    var name: String
    var devices: [Device]
    /// Allocations (`accelerator_allocated`): (namespace, pod, container, device).
    var allocations: [(String, String, String, String)] = []
    var shares: [Share] = []
    /// Unix seconds of the sample; nil leaves the self-metric out.
    var sampleTime: Double?

    func exposition() -> String {
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

    func targetData(target: String, catalog: MetricCatalog, scrapeTime: Double) throws -> TargetData {
        let families = try ExpositionParser.parse(exposition(), format: .text)
        return TargetData(
            target: target, parsed: families, keeping: catalog.families, scrapeTime: scrapeTime, fallbackNode: nil)
    }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let seconds: Mutex<Double>
    init(_ start: Double) { seconds = Mutex(start) }
    var now: Double { seconds.withLock { $0 } }
    func advance(_ delta: Double) { seconds.withLock { $0 += delta } }
}

import Synchronization
