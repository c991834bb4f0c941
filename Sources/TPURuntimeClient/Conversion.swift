public import Accelerators
public import TPURuntimeAPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The libtpu metric names the client asks for (reference §6).
public enum TPURuntimeMetric: String, Sendable, CaseIterable {
    case hbmUsage = "tpu.runtime.hbm.memory.usage.bytes"
    case hbmTotal = "tpu.runtime.hbm.memory.total.bytes"
    case dutyCycle = "tpu.runtime.tensorcore.dutycycle.percent"
    /// Newer libtpu only.
    case hbmUtilization = "tpu.runtime.hbm.utilization.percent"
    /// Where supported.
    case hloQueueSize = "hlo.queue.size.gauge"
    case hloExecutionTiming = "hlo.execution.timing.distribution.microseconds"
}

/// libtpu answers → checked values. Nothing here trusts the server: a value of the wrong kind, out of range or
/// not finite, an index that is not a device ordinal, a distribution whose parts disagree — each is dropped with a
/// reason, and the rest of the answer is still used.
public enum TPURuntimeConversion {
    /// Device ordinals above this are not ordinals (a host has at most a few dozen TPU devices).
    static let maxOrdinal: Int64 = 4095
    /// Finite buckets above this are a garbage layout (libtpu's exponential layouts have tens).
    static let maxBuckets = 4096

    /// Adds one `GetRuntimeMetric` answer for `metric` to `snapshot`; returns why values were dropped.
    public static func add(_ response: Tpu_Monitoring_Runtime_MetricResponse, as metric: TPURuntimeMetric,
                           to snapshot: inout TPURuntimeSnapshot) -> [String] {
        var problems: [String] = []
        let answered = response.metric.name
        guard answered.isEmpty || answered == metric.rawValue else {
            return ["asked for \(metric.rawValue), answered \(Self.shown(answered)); ignored"]
        }
        var seen: Set<Int> = []
        for point in response.metric.metrics {
            guard let index = Self.deviceIndex(point.attribute) else {
                problems.append("\(metric.rawValue): a value without a usable device index (\(Self.describe(point.attribute)))")
                continue
            }
            guard seen.insert(index).inserted else {
                problems.append("\(metric.rawValue): device \(index) given twice; the first kept")
                continue
            }
            switch metric {
            case .hbmUsage, .hbmTotal:
                // 1 PiB: anything larger is garbage, not memory.
                guard let bytes = Self.number(point), bytes >= 0, bytes < 1_125_899_906_842_624 else {
                    problems.append("\(metric.rawValue): device \(index): \(Self.describe(point)) is not a byte count")
                    continue
                }
                if metric == .hbmUsage { snapshot.hbmUsedBytes[index] = bytes } else { snapshot.hbmTotalBytes[index] = bytes }
            case .dutyCycle, .hbmUtilization:
                // A hair over 100 is rounding; more is garbage.
                guard let percent = Self.number(point), percent >= 0, percent <= 100.5 else {
                    problems.append("\(metric.rawValue): index \(index): \(Self.describe(point)) is not a percentage")
                    continue
                }
                if metric == .dutyCycle {
                    snapshot.dutyCyclePercent[index] = min(percent, 100)
                } else {
                    snapshot.hbmUtilizationPercent[index] = min(percent, 100)
                }
            case .hloQueueSize:
                guard let size = Self.number(point), size >= 0, size < 1e9, size == size.rounded() else {
                    problems.append("\(metric.rawValue): device \(index): \(Self.describe(point)) is not a queue length")
                    continue
                }
                snapshot.hloQueueSize[index] = size
            case .hloExecutionTiming:
                guard case .distribution(let distribution)? = point.measure else {
                    problems.append("\(metric.rawValue): device \(index): \(Self.describe(point)) is not a distribution")
                    continue
                }
                switch Self.histogram(distribution, scale: 1e-6) {
                case .success(let histogram): snapshot.hloExecutionSeconds[index] = histogram
                case .failure(let reason): problems.append("\(metric.rawValue): device \(index): \(reason.message)")
                }
            }
        }
        return problems
    }

    /// Memory a device reports in use beyond its total is dropped (the total stays): one of the two is wrong.
    public static func checkConsistency(_ snapshot: inout TPURuntimeSnapshot) -> [String] {
        var problems: [String] = []
        for (index, used) in snapshot.hbmUsedBytes.sorted(by: { $0.key < $1.key }) {
            if let total = snapshot.hbmTotalBytes[index], used > total {
                snapshot.hbmUsedBytes[index] = nil
                problems.append("device \(index): HBM in use \(Int64(used)) exceeds its total \(Int64(total)); dropped")
            }
        }
        return problems
    }

    /// The device a data point is about. Memory and duty cycle carry it as the attribute's integer value; the HLO
    /// metrics in the `device_ordinal` entry of a key-value list, as an integer or — newer libtpu — as a string of
    /// digits.
    static func deviceIndex(_ attribute: Tpu_Monitoring_Runtime_Attribute) -> Int? {
        func ordinal(_ value: Tpu_Monitoring_Runtime_AttrValue) -> Int? {
            switch value.attr {
            case .intAttr(let n)?: return (0...maxOrdinal).contains(n) ? Int(n) : nil
            case .stringAttr(let s)?:
                guard !s.isEmpty, s.count <= 4, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(s) else { return nil }
                return (0...maxOrdinal).contains(n) ? Int(n) : nil
            default: return nil
            }
        }
        guard attribute.hasValue else { return nil }
        if case .kvlistAttr(let list)? = attribute.value.attr {
            return list.attributes.first { $0.key == "device_ordinal" }.flatMap { $0.hasValue ? ordinal($0.value) : nil }
        }
        return ordinal(attribute.value)
    }

    /// A gauge's or counter's number; nil for strings, booleans, other measures and non-finite values.
    static func number(_ point: Tpu_Monitoring_Runtime_Metric) -> Double? {
        let value: Double
        switch point.measure {
        case .gauge(let gauge)?:
            switch gauge.value {
            case .asDouble(let d)?: value = d
            case .asInt(let i)?: value = Double(i)
            default: return nil
            }
        case .counter(let counter)?:
            switch counter.value {
            case .asDouble(let d)?: value = d
            case .asInt(let i)?: value = Double(i)
            default: return nil
            }
        default: return nil
        }
        return value.isFinite ? value : nil
    }

    /// Why a whole distribution was dropped; `message` goes into the problems ``add(_:as:to:)`` returns.
    public struct Rejection: Error, Sendable, Equatable {
        public var message: String
        init(_ message: String) { self.message = message }
    }

    /// A libtpu distribution as a histogram with its values multiplied by `scale` (µs → s: 1e-6).
    ///
    /// Bucket layouts as in google.api.Distribution (reference §6): bucket 0 is the underflow bucket, the last the
    /// overflow bucket; exponential finite bucket i spans [scale·g^(i-1), scale·g^i), linear bucket i's upper bound
    /// is offset + width·i, explicit bucket i's is bounds[i]. Those upper bounds are exclusive where Prometheus'
    /// `le` is inclusive: an observation exactly on a bound moves one bucket down — immaterial for timings.
    /// **[UNVERIFIED: libtpu's layouts are read as google.api's; checked against fixtures only.]**
    public static func histogram(_ d: Tpu_Monitoring_Runtime_Distribution, scale: Double) -> Result<DeviceHistogram, Rejection> {
        guard d.count >= 0 else { return .failure(Rejection("negative count \(d.count)")) }
        guard d.mean.isFinite else { return .failure(Rejection("mean is not finite")) }
        var bounds: [Double] = []
        switch d.bucketOptions.options {
        case .exponentialBuckets(let e)?:
            guard (1...Int32(maxBuckets)).contains(e.numFiniteBuckets), e.growthFactor.isFinite, e.growthFactor > 1,
                  e.scale.isFinite, e.scale > 0
            else { return .failure(Rejection("exponential layout out of range (\(e.numFiniteBuckets) buckets, growth \(e.growthFactor), scale \(e.scale))")) }
            var bound = e.scale
            for _ in 0...Int(e.numFiniteBuckets) {
                bounds.append(bound)
                bound *= e.growthFactor
            }
        case .linearBuckets(let l)?:
            guard (1...Int32(maxBuckets)).contains(l.numFiniteBuckets), l.width.isFinite, l.width > 0, l.offset.isFinite
            else { return .failure(Rejection("linear layout out of range (\(l.numFiniteBuckets) buckets, width \(l.width), offset \(l.offset))")) }
            bounds = (0...Int(l.numFiniteBuckets)).map { l.offset + l.width * Double($0) }
        case .explicitBuckets(let x)?:
            guard (1...maxBuckets).contains(x.bounds.count) else {
                return .failure(Rejection("explicit layout with \(x.bounds.count) bounds"))
            }
            bounds = x.bounds
        case nil:
            // No layout (or the deprecated regular one): only a count and a sum can be told.
            guard d.bucketCounts.isEmpty else { return .failure(Rejection("bucket counts without a bucket layout this client reads")) }
        }
        guard bounds.allSatisfy(\.isFinite), zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 }) else {
            return .failure(Rejection("bucket bounds are not finite and increasing"))
        }
        let buckets = bounds.count + 1
        guard d.bucketCounts.count <= buckets else {
            return .failure(Rejection("\(d.bucketCounts.count) bucket counts for a layout of \(buckets) buckets"))
        }
        guard d.bucketCounts.allSatisfy({ $0 >= 0 }) else { return .failure(Rejection("negative bucket count")) }
        var counts = d.bucketCounts.map(Double.init)
        // Trailing buckets left out count 0; no counts at all with a count > 0 puts everything in +Inf.
        if counts.isEmpty && d.count > 0 {
            counts = Array(repeating: 0, count: buckets - 1) + [Double(d.count)]
        } else {
            counts += Array(repeating: 0, count: buckets - counts.count)
        }
        let total = d.bucketCounts.reduce(Int64(0)) { $0.addingReportingOverflow($1).partialValue }
        guard d.bucketCounts.isEmpty || total == d.count else {
            return .failure(Rejection("bucket counts add up to \(total), the count is \(d.count)"))
        }
        let scaled = bounds.map { Self.significant($0 * scale) }
        guard let histogram = DeviceHistogram(upperBounds: scaled, bucketCounts: counts,
                                              sum: Self.significant(d.mean * Double(d.count) * scale), count: Double(d.count))
        else { return .failure(Rejection("bucket bounds collapse when converted")) }
        return .success(histogram)
    }

    /// `x` to 12 significant digits: `1.2e-06`, not `1.2000000000000002e-06` from a scale times a growth factor.
    static func significant(_ x: Double) -> Double {
        guard x != 0, x.isFinite else { return x }
        let exponent = Int(floor(log10(abs(x))))
        let factor = pow(10, Double(11 - exponent))
        guard factor.isFinite, factor > 0 else { return x }
        let rounded = (x * factor).rounded() / factor
        return rounded.isFinite ? rounded : x
    }

    static func describe(_ point: Tpu_Monitoring_Runtime_Metric) -> String {
        switch point.measure {
        case .gauge(let g)?:
            switch g.value {
            case .asDouble(let d)?: return "gauge \(d)"
            case .asInt(let i)?: return "gauge \(i)"
            case .asString(let s)?: return "gauge string \(shown(s))"
            case .asBool(let b)?: return "gauge bool \(b)"
            case nil: return "an empty gauge"
            }
        case .counter(let c)?:
            switch c.value {
            case .asDouble(let d)?: return "counter \(d)"
            case .asInt(let i)?: return "counter \(i)"
            case nil: return "an empty counter"
            }
        case .distribution?: return "a distribution"
        case .summary?: return "a summary"
        case nil: return "no value"
        }
    }

    static func describe(_ attribute: Tpu_Monitoring_Runtime_Attribute) -> String {
        guard attribute.hasValue else { return "no attribute" }
        switch attribute.value.attr {
        case .intAttr(let n)?: return "\(attribute.key)=\(n)"
        case .stringAttr(let s)?: return "\(attribute.key)=\(shown(s))"
        case .kvlistAttr(let l)?: return "keys " + l.attributes.map(\.key).prefix(6).map { shown($0) }.joined(separator: ",")
        case nil: return "an empty attribute"
        default: return "\(attribute.key) of another kind"
        }
    }

    /// At most 40 characters of server-sent text in a log line.
    static func shown(_ s: String) -> String {
        let cut = s.count > 40 ? String(s.prefix(40)) + "…" : s
        return "\"" + cut.map { $0.isASCII && !$0.isNewline ? String($0) : "?" }.joined() + "\""
    }
}
