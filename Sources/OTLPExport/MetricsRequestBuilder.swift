public import Exposition
import MetricSchema
public import OTLPProto
import SwiftProtobuf

/// One tick's families (what `/metrics` serves) → one OTLP `ExportMetricsServiceRequest`, named by
/// ``SemanticConventions``.
///
/// Values are `/metrics`' values, point for point; what differs is shape: Prometheus' cumulative `le` buckets become
/// OTLP's per-bucket counts, `accelerator_up` becomes `hw.status` per state, `hw.gpu.memory.utilization` is
/// used ÷ limit. Cumulative points carry a start time: when this builder first saw the series, or when its value last
/// went down (a counter reset). Info families are not sent as points: their facts become attributes.
///
/// Not thread-safe: one pusher owns one builder.
public struct MetricsRequestBuilder: Sendable {
    /// The node's attributes (`k8s.node.name`, `host.name`, `service.*`).
    public var resource: [(String, String)]
    /// The instrumentation scope's name on every request.
    public var scopeName: String
    /// The instrumentation scope's version; the pusher passes the exporter's.
    public var scopeVersion: String
    private var starts: [StreamKey: StreamStart] = [:]

    /// No series tracked yet: the first tick's cumulative points start at that tick.
    public init(resource: [(String, String)], scopeName: String = "accel-exporter", scopeVersion: String) {
        self.resource = resource
        self.scopeName = scopeName
        self.scopeVersion = scopeVersion
    }

    /// How many cumulative series the builder tracks (one start time each; series gone from a tick are forgotten).
    public var trackedSeries: Int { starts.count }

    /// The request for one tick, as the generated message (tests and tools read it this way; the push sends
    /// ``encode(_:timeUnixNano:)``'s bytes, which are the same).
    public mutating func build(_ families: [MetricFamily], timeUnixNano: UInt64) -> Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceRequest {
        let encoded = encode(families, timeUnixNano: timeUnixNano)
        return (try? Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceRequest(serializedBytes: encoded.bytes)) ?? .init()
    }

    /// The serialized `ExportMetricsServiceRequest` for one tick taken at `timeUnixNano`, and how many points it holds.
    public mutating func encode(_ families: [MetricFamily], timeUnixNano: UInt64) -> (bytes: [UInt8], points: Int) {
        var metrics = MetricList()
        let facts = DeviceFacts(families)
        var seen: Set<StreamKey> = []

        func addNumber(_ metric: OTelMetric, help: String, attributes: [(String, String)], value: Double) {
            guard value.isFinite else { return }
            let attributes = attributes + metric.fixedAttributes
            var startTime: UInt64 = 0
            if metric.instrument != .gauge {
                startTime = start(metric, attributes, value: value, monotonic: metric.instrument == .counter, now: timeUnixNano, seen: &seen)
            }
            metrics.appendNumber(metric, help: help, attributes: attributes, start: startTime, time: timeUnixNano, value: value)
        }

        var memory: [String: (used: Double?, limit: Double?, attributes: [(String, String)])] = [:]
        for family in families {
            guard let definition = Families.named(family.name) ?? Families.named(family.name + "_total") else {
                // A workload's own family (accelmetrics.io/metrics): its own name, its own labels.
                addOwn(family, definition: nil, into: &metrics, time: timeUnixNano, seen: &seen)
                continue
            }
            if definition.group == .process || family.kind == .info { continue }
            if definition == Families.Device.up {
                for sample in family.samples {
                    let attributes = deviceAttributes(sample.labels, facts: facts, renames: [:], drop: [], full: true)
                    let status = OTelMetric("hw.status", unit: "1", .upDownCounter)
                    addNumber(status, help: "Operational status of the accelerator: 1 for the state it is in, 0 for the other.",
                              attributes: attributes + [("hw.state", "ok")], value: sample.value == 1 ? 1 : 0)
                    addNumber(status, help: "Operational status of the accelerator: 1 for the state it is in, 0 for the other.",
                              attributes: attributes + [("hw.state", "failed")], value: sample.value == 1 ? 0 : 1)
                }
                continue
            }
            if family.kind == .histogram {
                addHistograms(family, definition: definition, facts: facts, into: &metrics, time: timeUnixNano, seen: &seen)
                continue
            }
            for sample in family.samples where sample.suffix.isEmpty || sample.suffix == "_total" {
                if let (metric, renames, drop) = SemanticConventions.convention(for: definition, labels: sample.labels) {
                    let attributes = definition.group == .device || definition.group == .pod
                        ? deviceAttributes(sample.labels, facts: facts, renames: renames, drop: drop)
                        : Self.attributes(sample.labels, renames: renames, drop: drop)
                    addNumber(metric, help: family.help, attributes: attributes, value: sample.value)
                    if metric.name == "hw.gpu.memory.usage" || metric.name == "hw.gpu.memory.limit" {
                        let key = attributes.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1}")
                        var entry = memory[key] ?? (nil, nil, attributes)
                        if metric.name == "hw.gpu.memory.usage" { entry.used = sample.value } else { entry.limit = sample.value }
                        memory[key] = entry
                    }
                } else {
                    guard let instrument = SemanticConventions.instrument(family.kind) else { continue }
                    let metric = OTelMetric(SemanticConventions.ownName(definition.name, unit: definition.unit),
                                            unit: SemanticConventions.unit(definition.unit, family: definition.name), instrument)
                    let attributes = definition.group == .device || definition.group == .pod
                        ? deviceAttributes(sample.labels, facts: facts, renames: [:], drop: [])
                        : Self.attributes(sample.labels, renames: [:], drop: [])
                    addNumber(metric, help: family.help, attributes: attributes, value: sample.value)
                }
            }
        }
        // hw.gpu.memory.utilization: used ÷ limit where the device gives both, in the order the devices came.
        let utilization = OTelMetric("hw.gpu.memory.utilization", unit: "1", .gauge)
        for (_, entry) in memory.sorted(by: { $0.key < $1.key }) {
            guard let used = entry.used, let limit = entry.limit, limit > 0 else { continue }
            addNumber(utilization, help: "Fraction of the device memory in use (0-1).", attributes: entry.attributes, value: used / limit)
        }
        starts = starts.filter { seen.contains($0.key) }

        // ExportMetricsServiceRequest { resource_metrics = 1 { resource = 1, scope_metrics = 2 { scope = 1, metrics = 2 } } }
        // The small outer parts are built apart; their lengths and the metrics' are computed first, so the points,
        // which are nearly all of the bytes, are copied once, into a buffer of the exact size.
        var instrumentation = ProtobufWriter()
        instrumentation.string(1, scopeName)
        instrumentation.string(2, scopeVersion)
        var resourceMessage = ProtobufWriter()
        for (key, value) in resource { resourceMessage.attribute(1, key, value) }
        let metricLengths = metrics.encodedLengths()
        let scopeLength = Self.fieldSize(instrumentation.bytes.count) + metricLengths.reduce(0) { $0 + Self.fieldSize($1) }
        let resourceMetricsLength = Self.fieldSize(resourceMessage.bytes.count) + Self.fieldSize(scopeLength)
        var request = ProtobufWriter(reserving: Self.fieldSize(resourceMetricsLength))
        request.tag(1, .lengthDelimited)
        request.varint(UInt64(resourceMetricsLength))
        request.message(1, resourceMessage.bytes)
        request.tag(2, .lengthDelimited)
        request.varint(UInt64(scopeLength))
        request.message(1, instrumentation.bytes)
        metrics.write(into: &request, lengths: metricLengths)
        return (request.bytes, metrics.points)
    }

    /// The bytes a length-delimited field of `length` bytes takes (a one-byte tag: field numbers below 16).
    static func fieldSize(_ length: Int) -> Int { 1 + ProtobufWriter.varintSize(UInt64(length)) + length }

    // MARK: Families of our own

    private mutating func addOwn(_ family: MetricFamily, definition: FamilyDefinition?, into metrics: inout MetricList, time: UInt64,
                                 seen: inout Set<StreamKey>) {
        guard let instrument = SemanticConventions.instrument(family.kind) else { return }
        if instrument == .histogram {
            addHistograms(family, definition: definition, facts: DeviceFacts([]), into: &metrics, time: time, seen: &seen)
            return
        }
        let metric = OTelMetric(SemanticConventions.ownName(family.name, unit: family.unit),
                                unit: SemanticConventions.unit(family.unit, family: family.name), instrument)
        for sample in family.samples where sample.suffix.isEmpty || sample.suffix == "_total" {
            guard sample.value.isFinite else { continue }
            let attributes = Self.attributes(sample.labels, renames: [:], drop: [])
            let startTime = instrument == .counter ? start(metric, attributes, value: sample.value, monotonic: true, now: time, seen: &seen) : 0
            metrics.appendNumber(metric, help: family.help, attributes: attributes, start: startTime, time: time, value: sample.value)
        }
    }

    // MARK: Histograms

    private mutating func addHistograms(_ family: MetricFamily, definition: FamilyDefinition?, facts: DeviceFacts,
                                        into metrics: inout MetricList, time: UInt64, seen: inout Set<StreamKey>) {
        let name = definition?.name ?? family.name
        let unit = definition?.unit ?? family.unit
        let metric = definition.flatMap { SemanticConventions.convention(for: $0, labels: [])?.0 }
            ?? OTelMetric(SemanticConventions.ownName(name, unit: unit), unit: SemanticConventions.unit(unit, family: name), .histogram)
        // Series in the order they first appear; each gathers its buckets, sum and count.
        var order: [[Label]] = []
        var series: [[Label]: (buckets: [(Double, Double)], sum: Double?, count: Double?)] = [:]
        for sample in family.samples {
            var labels = sample.labels
            var bound: Double?
            if sample.suffix == "_bucket" {
                guard let index = labels.firstIndex(where: { $0.name == "le" }) else { continue }
                bound = Self.parseBound(labels[index].value)
                labels.remove(at: index)
                if bound == nil { continue }
            }
            if series[labels] == nil {
                order.append(labels)
                series[labels] = ([], nil, nil)
            }
            switch sample.suffix {
            case "_bucket": series[labels]!.buckets.append((bound!, sample.value))
            case "_sum": series[labels]!.sum = sample.value
            case "_count": series[labels]!.count = sample.value
            default: break
            }
        }
        for labels in order {
            let entry = series[labels]!
            guard let count = entry.count, count.isFinite, count >= 0, count <= Double(UInt64.max / 2) else { continue }
            let buckets = entry.buckets.sorted { $0.0 < $1.0 }
            let attributes = definition.map { $0.group == .device || $0.group == .pod } == true
                ? deviceAttributes(labels, facts: facts, renames: [:], drop: [])
                : Self.attributes(labels, renames: [:], drop: [])
            // Cumulative `le` counts → per-bucket counts; the +Inf bucket is the count itself.
            var bounds: [Double] = []
            var counts: [UInt64] = []
            var previous = 0.0
            for (bound, cumulative) in buckets where bound.isFinite {
                bounds.append(bound)
                counts.append(UInt64(max(0, min(cumulative, count) - previous)))
                previous = max(previous, min(cumulative, count))
            }
            counts.append(UInt64(max(0, count - previous)))
            let startTime = start(metric, attributes, value: count, monotonic: true, now: time, seen: &seen)
            let sum = entry.sum.flatMap { $0.isFinite ? $0 : nil }
            metrics.appendHistogram(metric, help: family.help, attributes: attributes, start: startTime, time: time,
                                    count: UInt64(count), sum: sum, bounds: bounds, counts: counts)
        }
    }

    static func parseBound(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf", "+inf", "inf": .infinity
        default: Double(text)
        }
    }

    // MARK: Attributes

    static func attributes(_ labels: [Label], renames: [String: String], drop: Set<String>) -> [(String, String)] {
        var out: [(String, String)] = []
        out.reserveCapacity(labels.count)
        for label in labels where !drop.contains(label.name) {
            if let name = renames[label.name] {
                out.append((name, name == "network.io.direction" ? direction(label.value) : label.value))
            } else if let name = SemanticConventions.attributeNames[label.name] {
                out.append((name, label.value))
            } else if label.name.hasPrefix("label_") {
                out.append(("k8s.pod.label." + label.name.dropFirst("label_".count), label.value))
            } else {
                out.append((label.name, label.value))
            }
        }
        return out
    }

    /// A device's point: its labels' attributes plus `hw.type` and, for a MIG slice, `hw.parent`; `full` adds the
    /// opt-in facts (serial, firmware, driver), which only `hw.status` carries.
    private func deviceAttributes(_ labels: [Label], facts: DeviceFacts, renames: [String: String], drop: Set<String>,
                                  full: Bool = false) -> [(String, String)] {
        var out = Self.attributes(labels, renames: renames, drop: drop)
        guard let id = labels.first(where: { $0.name == SchemaLabel.accelerator })?.value else { return out }
        if let vendor = labels.first(where: { $0.name == SchemaLabel.vendor })?.value {
            out.append(("hw.type", SemanticConventions.hardwareType(vendor: vendor)))
        }
        if let fact = facts.byDevice[id] {
            if let parent = fact.parent { out.append(("hw.parent", parent)) }
            if full {
                if let serial = fact.serial { out.append(("hw.serial_number", serial)) }
                if let firmware = fact.firmware { out.append(("hw.firmware_version", firmware)) }
                if let driver = fact.driver { out.append(("hw.driver_version", driver)) }
            }
        }
        return out
    }

    static func direction(_ value: String) -> String {
        switch value {
        case "rx": "receive"
        case "tx": "transmit"
        default: value
        }
    }

    // MARK: Start times

    private struct StreamKey: Hashable {
        var metric: String
        var attributes: [String]
    }

    private struct StreamStart {
        var start: UInt64
        var last: Double
    }

    private mutating func start(_ metric: OTelMetric, _ attributes: [(String, String)], value: Double, monotonic: Bool, now: UInt64,
                                seen: inout Set<StreamKey>) -> UInt64 {
        let key = StreamKey(metric: metric.name, attributes: attributes.map { $0.0 + "=" + $0.1 })
        seen.insert(key)
        if var entry = starts[key] {
            // A counter that went down was reset (a model server restarted, a driver reloaded): its count begins now.
            if monotonic && value < entry.last { entry.start = now }
            entry.last = value
            starts[key] = entry
            return entry.start
        }
        starts[key] = StreamStart(start: now, last: value)
        return now
    }
}

/// Per-device facts from `accelerator_info`: MIG parent, serial, firmware, driver.
private struct DeviceFacts {
    struct Fact {
        var parent: String?
        var serial: String?
        var firmware: String?
        var driver: String?
    }

    var byDevice: [String: Fact] = [:]

    init(_ families: [MetricFamily]) {
        guard let info = families.first(where: { $0.name == Families.Device.info.name && $0.kind == .info }) else { return }
        for sample in info.samples {
            func value(_ name: String) -> String? {
                sample.labels.first { $0.name == name }.flatMap { $0.value.isEmpty ? nil : $0.value }
            }
            guard let id = value(SchemaLabel.accelerator) else { continue }
            byDevice[id] = Fact(parent: value("parent"), serial: value("serial"), firmware: value("vbios"), driver: value("driver"))
        }
    }
}

/// Metrics in the order they first appear, each gathering its encoded points.
private struct MetricList {
    private struct Entry {
        var metric: OTelMetric
        var help: String
        /// `data_points` fields, each already tagged and length-prefixed.
        var points: ProtobufWriter
    }

    private var entries: [Entry] = []
    private var index: [String: Int] = [:]
    private var scratch = ProtobufWriter()
    private(set) var points = 0

    private mutating func slot(_ metric: OTelMetric, help: String) -> Int {
        if let i = index[metric.name] { return i }
        entries.append(Entry(metric: metric, help: help, points: ProtobufWriter()))
        index[metric.name] = entries.count - 1
        return entries.count - 1
    }

    /// `NumberDataPoint { attributes = 7, start_time_unix_nano = 2, time_unix_nano = 3, as_double = 4 }`.
    mutating func appendNumber(_ metric: OTelMetric, help: String, attributes: [(String, String)], start: UInt64, time: UInt64,
                               value: Double) {
        let i = slot(metric, help: help)
        // A name the table gave two shapes keeps the first.
        guard entries[i].metric.instrument == metric.instrument, metric.instrument != .histogram else { return }
        scratch.removeAll()
        for (key, value) in attributes { scratch.attribute(7, key, value) }
        if start != 0 { scratch.fixed64(2, start) }
        scratch.fixed64(3, time)
        scratch.double(4, value)
        entries[i].points.message(1, scratch.bytes)
        points += 1
    }

    /// `HistogramDataPoint { attributes = 9, start = 2, time = 3, count = 4, sum = 5, bucket_counts = 6 (packed),
    /// explicit_bounds = 7 (packed) }`.
    mutating func appendHistogram(_ metric: OTelMetric, help: String, attributes: [(String, String)], start: UInt64, time: UInt64,
                                  count: UInt64, sum: Double?, bounds: [Double], counts: [UInt64]) {
        let i = slot(metric, help: help)
        guard entries[i].metric.instrument == .histogram else { return }
        scratch.removeAll()
        for (key, value) in attributes { scratch.attribute(9, key, value) }
        if start != 0 { scratch.fixed64(2, start) }
        scratch.fixed64(3, time)
        if count != 0 { scratch.fixed64(4, count) }
        if let sum { scratch.double(5, sum) }
        scratch.tag(6, .lengthDelimited)
        scratch.varint(UInt64(counts.count * 8))
        for c in counts { scratch.rawFixed64(c) }
        if !bounds.isEmpty {
            scratch.tag(7, .lengthDelimited)
            scratch.varint(UInt64(bounds.count * 8))
            for b in bounds { scratch.rawFixed64(b.bitPattern) }
        }
        entries[i].points.message(1, scratch.bytes)
        points += 1
    }

    /// Each `Metric { name = 1, description = 2, unit = 3, gauge = 5 | sum = 7 | histogram = 9 }`'s encoded length.
    func encodedLengths() -> [Int] {
        entries.map { entry in
            let fields = Self.headerFields(entry)
            return fields.reduce(0) { $0 + MetricsRequestBuilder.fieldSize($1.utf8.count) } + MetricsRequestBuilder.fieldSize(Self.dataLength(entry))
        }
    }

    /// Writes every metric as a `metrics = 2` field of the scope.
    func write(into out: inout ProtobufWriter, lengths: [Int]) {
        for (entry, length) in zip(entries, lengths) {
            out.tag(2, .lengthDelimited)
            out.varint(UInt64(length))
            for (number, text) in zip([1, 2, 3], Self.headerStrings(entry)) where !text.isEmpty || number == 1 { out.string(number, text) }
            let field = switch entry.metric.instrument {
            case .gauge: 5
            case .counter, .upDownCounter: 7
            case .histogram: 9
            }
            out.tag(field, .lengthDelimited)
            out.varint(UInt64(Self.dataLength(entry)))
            out.append(entry.points.bytes)
            switch entry.metric.instrument {
            case .gauge: break
            case .counter, .upDownCounter, .histogram:
                out.tag(2, .varint)
                out.varint(2)  // AGGREGATION_TEMPORALITY_CUMULATIVE
                if entry.metric.instrument == .counter {
                    out.tag(3, .varint)
                    out.varint(1)  // is_monotonic
                }
            }
        }
    }

    private static func headerStrings(_ entry: Entry) -> [String] { [entry.metric.name, entry.help, entry.metric.unit] }

    /// The name always; description and unit when not empty.
    private static func headerFields(_ entry: Entry) -> [String] {
        [entry.metric.name] + [entry.help, entry.metric.unit].filter { !$0.isEmpty }
    }

    /// The `Gauge`/`Sum`/`Histogram` message's length: its points, then temporality (and monotonicity) for sums and
    /// histograms.
    private static func dataLength(_ entry: Entry) -> Int {
        switch entry.metric.instrument {
        case .gauge: entry.points.bytes.count
        case .counter: entry.points.bytes.count + 4
        case .upDownCounter, .histogram: entry.points.bytes.count + 2
        }
    }
}
