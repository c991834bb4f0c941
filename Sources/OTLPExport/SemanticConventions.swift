import Exposition
import MetricSchema

/// How one of our families is named and shaped in OTLP: the OpenTelemetry semantic conventions where they have a
/// counterpart (`hw.gpu.*`, `hw.*`, `gen_ai.server.*`, all "development" status), our own name under the
/// `accelerator.` / `inference.` / `hwmon.` / `accel_exporter.` namespaces where they have none.
///
/// The table is the single place that decides an OTLP name; the README's mapping table is written from the same
/// rows (and `SemanticConventionsTests` keeps the two in step).
public struct OTelMetric: Sendable, Hashable {
    /// The OpenTelemetry instrument a family becomes.
    public enum Instrument: String, Sendable, Hashable {
        /// A value that is read, not summed (OTLP `Gauge`).
        case gauge
        /// A monotonic cumulative sum (OTLP `Sum`, `is_monotonic`).
        case counter
        /// A cumulative sum that can go down (OTLP `Sum`, not monotonic): memory in use, states.
        case upDownCounter
        /// Explicit-bucket histogram, cumulative.
        case histogram
    }

    /// The OTLP metric name (`hw.gpu.utilization`, `accelerator.…`).
    public var name: String
    /// UCUM, as the conventions write it: `1`, `By`, `Cel`, `W`, `J`, `s`, `Hz`, `V`, `By/s`, `{error}`…
    public var unit: String
    /// Decides the point type and whether points carry a start time.
    public var instrument: Instrument
    /// Attributes every point of this metric carries beyond its labels' (`hw.gpu.task=general`).
    public var fixedAttributes: [(String, String)]

    /// `fixed`: ``fixedAttributes``.
    public init(_ name: String, unit: String, _ instrument: Instrument, fixed: [(String, String)] = []) {
        self.name = name
        self.unit = unit
        self.instrument = instrument
        self.fixedAttributes = fixed
    }

    /// All four fields, fixed attributes in order.
    public static func == (a: OTelMetric, b: OTelMetric) -> Bool {
        a.name == b.name && a.unit == b.unit && a.instrument == b.instrument
            && a.fixedAttributes.elementsEqual(b.fixedAttributes, by: { $0 == $1 })
    }

    /// Name and unit only: consistent with ``==(_:_:)``, which compares more.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(unit)
    }
}

/// Our families to OpenTelemetry's names, units, instruments and attributes.
public enum SemanticConventions {
    /// The label → attribute renames every family shares. Labels not listed keep their name (`pci_bus_id`, `link`,
    /// `engine`, `clock`…); an allow-listed pod label `label_<name>` becomes `k8s.pod.label.<name>`.
    public static let attributeNames: [String: String] = [
        SchemaLabel.accelerator: "hw.id",
        SchemaLabel.vendor: "hw.vendor",
        SchemaLabel.model: "hw.model",
        SchemaLabel.namespace: "k8s.namespace.name",
        SchemaLabel.pod: "k8s.pod.name",
        SchemaLabel.container: "k8s.container.name",
        SchemaLabel.modelName: "gen_ai.request.model",
    ]

    /// The families that map onto a convention, and how. A family can map per label value (memory kind, engine),
    /// so the rule takes the sample's labels; nil means "our name" (``ownName(_:)``).
    static func convention(for family: FamilyDefinition, labels: [Label]) -> (OTelMetric, renames: [String: String], drop: Set<String>)? {
        func value(_ name: String) -> String? { labels.first { $0.name == name }?.value }
        typealias D = Families.Device
        switch family.name {
        case D.utilization.name:
            return (OTelMetric("hw.gpu.utilization", unit: "1", .gauge, fixed: [("hw.gpu.task", "general")]), [:], [])
        case D.engineUtilization.name:
            // The conventions name three tasks; only NVML's encoder and decoder engines are one of them. Our own
            // engines (gfx, memory_controller, AMD's video block, jpeg) stay ours.
            switch value("engine") {
            case "video_encode": return (OTelMetric("hw.gpu.utilization", unit: "1", .gauge, fixed: [("hw.gpu.task", "encoder")]), [:], ["engine"])
            case "video_decode": return (OTelMetric("hw.gpu.utilization", unit: "1", .gauge, fixed: [("hw.gpu.task", "decoder")]), [:], ["engine"])
            default: return nil
            }
        case D.memoryUsed.name where isDeviceMemory(value("memory")):
            return (OTelMetric("hw.gpu.memory.usage", unit: "By", .upDownCounter), [:], ["memory"])
        case D.memoryTotal.name where isDeviceMemory(value("memory")):
            return (OTelMetric("hw.gpu.memory.limit", unit: "By", .upDownCounter), [:], ["memory"])
        case D.interconnect.name:
            return (OTelMetric("hw.gpu.io", unit: "By", .counter), ["direction": "network.io.direction"], [])
        case D.power.name:
            return (OTelMetric("hw.power", unit: "W", .gauge), [:], [])
        case D.energy.name:
            return (OTelMetric("hw.energy", unit: "J", .counter), [:], [])
        case D.temperature.name:
            return (OTelMetric("hw.temperature", unit: "Cel", .gauge), ["sensor": "hw.sensor_location"], [])
        case D.errors.name:
            return (OTelMetric("hw.errors", unit: "{error}", .counter), ["type": "error.type"], [])
        case Families.Inference.requestDuration.name:
            return (OTelMetric("gen_ai.server.request.duration", unit: "s", .histogram), [:], [])
        case Families.Inference.timeToFirstToken.name:
            return (OTelMetric("gen_ai.server.time_to_first_token", unit: "s", .histogram), [:], [])
        case Families.Inference.timePerOutputToken.name:
            return (OTelMetric("gen_ai.server.time_per_output_token", unit: "s", .histogram), [:], [])
        default:
            return nil
        }
    }

    /// Device memory proper (VRAM, HBM); AMD's GTT and CPU-visible VRAM window stay ours.
    static func isDeviceMemory(_ kind: String?) -> Bool { kind == "vram" || kind == "hbm" }

    /// Our name for a family without a convention: the namespace before the first `_` becomes `namespace.`, the unit
    /// suffix goes (OpenTelemetry carries units apart), `accel_exporter_` stays whole:
    /// `accelerator_sm_active_ratio` → `accelerator.sm_active`, `accel_exporter_samples` → `accel_exporter.samples`.
    /// A name outside our namespaces (a workload's own family) is kept as it is.
    public static func ownName(_ family: String, unit: String?) -> String {
        var stem = family
        if let unit, stem.hasSuffix("_" + unit) { stem.removeLast(unit.count + 1) }
        for namespace in ["accel_exporter", "accelerator", "inference", "hwmon"] where stem.hasPrefix(namespace + "_") {
            return namespace + "." + stem.dropFirst(namespace.count + 1)
        }
        return family
    }

    /// UCUM for our OpenMetrics unit suffixes; counts get an annotation from their family where one reads well.
    public static func unit(_ unit: String?, family: String) -> String {
        switch unit {
        case "ratio": return "1"
        case "bytes": return "By"
        case "bytes_per_second": return "By/s"
        case "celsius": return "Cel"
        case "watts": return "W"
        case "joules": return "J"
        case "hertz": return "Hz"
        case "seconds": return "s"
        case "volts": return "V"
        case "amperes": return "A"
        case "transfers_per_second": return "{transfer}/s"
        case .some(let other): return "{\(other)}"
        case nil:
            if family.hasSuffix("_rpm") { return "{rpm}" }
            if family.hasSuffix("_errors") { return "{error}" }
            if family.hasSuffix("_tokens") { return "{token}" }
            if family.hasSuffix("_requests") || family.contains("_requests_") { return "{request}" }
            return "1"
        }
    }

    /// `hw.type` by vendor: `gpu` where the conventions have the device kind, ours (`tpu`, `hpu`) where they have
    /// none. Every vendor's readings use the `hw.gpu.*` names, so one query covers a mixed fleet.
    public static func hardwareType(vendor: String) -> String {
        switch vendor {
        case "google": "tpu"
        case "habana": "hpu"
        default: "gpu"
        }
    }

    /// The instrument a family of our own becomes.
    static func instrument(_ kind: MetricFamily.Kind) -> OTelMetric.Instrument? {
        switch kind {
        case .gauge, .unknown: .gauge
        case .counter: .counter
        case .histogram: .histogram
        case .info, .summary: nil
        }
    }
}
