/// The Gateway API Inference Extension's model-server protocol under names of the server's own: a queue-size gauge,
/// a running-requests gauge and a KV-cache-utilization gauge (the endpoint picker is configured with their names the
/// same way). Given for a pod through annotations, or as options of an `--inference.targets` entry.
///
/// When given, it wins: the named gauges fill `inference_requests_waiting`, `inference_requests_running` and
/// `inference_kv_cache_utilization_ratio` in place of any engine's own, and a server that is none of the known
/// engines is normalized from them alone. A known engine's other families (histograms, counters) still apply.
public struct CustomMetricNames: Sendable, Hashable, CustomStringConvertible {
    /// TotalQueuedRequests: a gauge of requests waiting.
    public var queued: String?
    /// TotalRunningRequests: a gauge of requests being processed.
    public var running: String?
    /// KVCacheUtilization: a gauge, 0..1 once multiplied by `kvCacheScale`.
    public var kvCache: String?
    /// 0.01 for a gauge in percent. Values outside 0..1 after scaling are refused, never clamped.
    public var kvCacheScale: Double
    /// The label naming the served model (default `model_name`); its value becomes `model_name`.
    public var modelLabel: String?

    /// Unchecked; ``parse(_:)`` is where annotation and option text is validated.
    public init(queued: String? = nil, running: String? = nil, kvCache: String? = nil, kvCacheScale: Double = 1, modelLabel: String? = nil) {
        self.queued = queued
        self.running = running
        self.kvCache = kvCache
        self.kvCacheScale = kvCacheScale
        self.modelLabel = modelLabel
    }

    /// The option keys, as annotation suffixes (`inference.accelmetrics.io/<key>`) and `--inference.targets` options.
    public static let queuedKey = "queued-metric"
    /// Names ``running``.
    public static let runningKey = "running-metric"
    /// Names ``kvCache``.
    public static let kvCacheKey = "kv-cache-metric"
    /// Sets ``kvCacheScale``; only with ``kvCacheKey``.
    public static let kvCacheScaleKey = "kv-cache-scale"
    /// Names ``modelLabel``.
    public static let modelLabelKey = "model-label"
    /// Every key ``parse(_:)`` accepts; discovery reads exactly these annotations.
    public static let keys = [queuedKey, runningKey, kvCacheKey, kvCacheScaleKey, modelLabelKey]

    /// Reads the options; nil when none is given. A scale or model label without any metric name, a name that is
    /// not a metric (label) name, a scale that is not a positive number, or an unknown key is an error naming it.
    public static func parse(_ options: [(key: String, value: String)]) throws(CustomMetricNamesError) -> CustomMetricNames? {
        guard !options.isEmpty else { return nil }
        var names = CustomMetricNames()
        for (key, raw) in options {
            let value = raw.trimmingSpaces
            switch key {
            case queuedKey, runningKey, kvCacheKey:
                guard isMetricName(value) else {
                    throw CustomMetricNamesError(key: key, message: "\"\(raw)\" is not a metric name")
                }
                if key == queuedKey { names.queued = value } else if key == runningKey { names.running = value } else { names.kvCache = value }
            case kvCacheScaleKey:
                guard let scale = Double(value), scale.isFinite, scale > 0 else {
                    throw CustomMetricNamesError(key: key, message: "\"\(raw)\" is not a positive number (e.g. 0.01 for percent)")
                }
                names.kvCacheScale = scale
            case modelLabelKey:
                guard isLabelName(value) else {
                    throw CustomMetricNamesError(key: key, message: "\"\(raw)\" is not a label name")
                }
                names.modelLabel = value
            default:
                throw CustomMetricNamesError(key: key, message: "unknown option (expected one of \(keys.joined(separator: ", ")))")
            }
        }
        guard names.queued != nil || names.running != nil || names.kvCache != nil else {
            throw CustomMetricNamesError(
                key: options[0].key, message: "needs at least one of \(queuedKey), \(runningKey), \(kvCacheKey)")
        }
        if names.kvCache == nil, options.contains(where: { $0.key == kvCacheScaleKey }) {
            throw CustomMetricNamesError(key: kvCacheScaleKey, message: "given without \(kvCacheKey)")
        }
        return names
    }

    /// The options again, `key=value` joined by `;` as `--inference.targets` writes them; a scale of 1 is left out.
    public var description: String {
        var parts: [String] = []
        if let queued { parts.append("\(Self.queuedKey)=\(queued)") }
        if let running { parts.append("\(Self.runningKey)=\(running)") }
        if let kvCache { parts.append("\(Self.kvCacheKey)=\(kvCache)") }
        if kvCacheScale != 1 { parts.append("\(Self.kvCacheScaleKey)=\(kvCacheScale)") }
        if let modelLabel { parts.append("\(Self.modelLabelKey)=\(modelLabel)") }
        return parts.joined(separator: ";")
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, as the exposition formats define metric names.
    static func isMetricName(_ text: String) -> Bool {
        guard let first = text.utf8.first, !isDigit(first) else { return false }
        return text.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    static func isLabelName(_ text: String) -> Bool {
        guard let first = text.utf8.first, !isDigit(first) else { return false }
        return text.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    private static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}

/// A custom metric mapping that cannot be used, naming the option at fault.
public struct CustomMetricNamesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The annotation suffix or option key at fault (the first one given when no metric is named at all).
    public var key: String
    /// What is wrong with it, quoting the value.
    public var message: String

    /// Made by ``CustomMetricNames/parse(_:)``.
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    /// `key: message`; discovery puts the annotation prefix in front, `--inference.targets` the entry.
    public var description: String { "\(key): \(message)" }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
