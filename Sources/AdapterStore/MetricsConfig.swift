import CustomMetricsAPI
public import ConfigYAML

/// `--metrics-config`: metrics added to (or replacing) the built-in ones.
///
/// ```yaml
/// builtins: true                    # keep gpu_utilization & co. (default true)
/// metrics:
///   - name: gpu_sm_clock_hertz      # the name HPAs use
///     series: accelerator_clock_hertz
///     selector: clock=sm            # optional: a label selector on the series' own labels
///     aggregation: max              # over the object's accelerators (a pod's, a node's, a workload's)
///     per_accelerator: max          # optional: over one accelerator's series (default: aggregation)
///     namespace_total: max          # optional: over a namespace's accelerators (default: aggregation)
///     scale: 1                      # optional: multiplies the value
///     resources: [pods, nodes, namespaces, external]   # optional: where it is served (default: all)
/// ```
public struct MetricsConfig: Sendable, Equatable {
    /// `builtins:`; false serves only ``metrics``.
    public var keepBuiltIns: Bool
    /// `metrics:`, in file order, names unique; one named like a built-in replaces it.
    public var metrics: [MetricDefinition]

    /// The built-ins alone, by default: what an empty file means.
    public init(keepBuiltIns: Bool = true, metrics: [MetricDefinition] = []) {
        self.keepBuiltIns = keepBuiltIns
        self.metrics = metrics
    }

    /// The full catalog this configuration asks for.
    public var definitions: [MetricDefinition] {
        var table: [String: MetricDefinition] = [:]
        if keepBuiltIns { for definition in MetricDefinition.builtIn { table[definition.name] = definition } }
        for definition in metrics { table[definition.name] = definition }
        return table.values.sorted { $0.name < $1.name }
    }

    /// Checks a parsed document against the schema; every problem names its place.
    public init(_ document: ConfigValue) throws(ConfigError) {
        guard case .map(let top) = document else {
            if case .null = document {
                self.init()
                return
            }
            throw ConfigError(path: "", message: "the configuration must be a map with a \"metrics\" list")
        }
        var keepBuiltIns = true
        var metrics: [MetricDefinition] = []
        for (key, value) in top {
            switch key {
            case "builtins":
                keepBuiltIns = try Self.bool(value, at: "builtins")
            case "metrics":
                guard case .list(let entries) = value else {
                    if case .null = value { continue }
                    throw ConfigError(path: "metrics", message: "must be a list")
                }
                var seen: Set<String> = []
                for (index, entry) in entries.enumerated() {
                    let definition = try Self.metric(entry, at: "metrics[\(index)]")
                    guard seen.insert(definition.name).inserted else {
                        throw ConfigError(path: "metrics[\(index)].name", message: "\"\(definition.name)\" is defined twice")
                    }
                    metrics.append(definition)
                }
            default:
                throw ConfigError(path: key, message: "unknown key (expected builtins or metrics)")
            }
        }
        self.init(keepBuiltIns: keepBuiltIns, metrics: metrics)
    }

    private static func metric(_ value: ConfigValue, at path: String) throws(ConfigError) -> MetricDefinition {
        guard case .map(let fields) = value else { throw ConfigError(path: path, message: "must be a map") }
        var name: String?
        var series: String?
        var selector = LabelSelector.everything
        var aggregation: Aggregation?
        var perAccelerator: Aggregation?
        var namespaceTotal: Aggregation?
        var scale = 1.0
        var resources = Set(ServedResource.allCases)
        for (key, field) in fields {
            let here = "\(path).\(key)"
            switch key {
            case "name":
                let text = try string(field, at: here)
                guard isMetricName(text) else {
                    throw ConfigError(path: here, message: "\"\(text)\" is not a valid metric name ([a-z_][a-z0-9_]*)")
                }
                name = text
            case "series":
                let text = try string(field, at: here)
                guard isSeriesName(text) else {
                    throw ConfigError(path: here, message: "\"\(text)\" is not a Prometheus metric name")
                }
                series = text
            case "selector":
                let text = try string(field, at: here)
                do {
                    selector = try LabelSelector(parsing: text)
                } catch {
                    throw ConfigError(path: here, message: "invalid label selector \"\(text)\": \(error.message)")
                }
            case "aggregation": aggregation = try self.aggregation(field, at: here)
            case "per_accelerator": perAccelerator = try self.aggregation(field, at: here)
            case "namespace_total": namespaceTotal = try self.aggregation(field, at: here)
            case "scale":
                let text = try string(field, at: here)
                guard let number = Double(text), number.isFinite, number != 0 else {
                    throw ConfigError(path: here, message: "must be a finite, non-zero number, not \"\(text)\"")
                }
                scale = number
            case "resources":
                guard case .list(let items) = field, !items.isEmpty else {
                    throw ConfigError(path: here, message: "must be a non-empty list of pods, nodes, namespaces, external")
                }
                resources = []
                for (index, item) in items.enumerated() {
                    let text = try string(item, at: "\(here)[\(index)]")
                    guard let resource = ServedResource(rawValue: text) else {
                        throw ConfigError(
                            path: "\(here)[\(index)]", message: "\"\(text)\" is not one of pods, nodes, namespaces, external")
                    }
                    resources.insert(resource)
                }
            default:
                throw ConfigError(
                    path: here,
                    message: "unknown key (expected name, series, selector, aggregation, per_accelerator, "
                        + "namespace_total, scale, resources)")
            }
        }
        guard let name else { throw ConfigError(path: "\(path).name", message: "is required") }
        guard let series else { throw ConfigError(path: "\(path).series", message: "is required") }
        guard let aggregation else {
            throw ConfigError(path: "\(path).aggregation", message: "is required (avg, max or sum)")
        }
        return MetricDefinition(
            name: name, expression: .series(SeriesSpec(family: series, selector: selector)),
            perAccelerator: perAccelerator ?? aggregation, across: aggregation,
            namespaceTotal: namespaceTotal ?? aggregation, scale: scale, resources: resources, unit: "")
    }

    private static func string(_ value: ConfigValue, at path: String) throws(ConfigError) -> String {
        guard case .scalar(let text) = value else { throw ConfigError(path: path, message: "must be a single value") }
        return text
    }

    private static func bool(_ value: ConfigValue, at path: String) throws(ConfigError) -> Bool {
        switch try string(value, at: path) {
        case "true", "True", "TRUE", "yes", "on": return true
        case "false", "False", "FALSE", "no", "off": return false
        case let other: throw ConfigError(path: path, message: "must be true or false, not \"\(other)\"")
        }
    }

    private static func aggregation(_ value: ConfigValue, at path: String) throws(ConfigError) -> Aggregation {
        let text = try string(value, at: path)
        guard let aggregation = Aggregation(rawValue: text) else {
            throw ConfigError(path: path, message: "\"\(text)\" is not one of avg, max, sum")
        }
        return aggregation
    }

    /// Names the HPA puts in a URL path segment: keep them to the Prometheus-style subset.
    static func isMetricName(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "_") || (first >= 97 && first <= 122) else { return false }
        return text.utf8.count <= 200
            && text.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }

    static func isSeriesName(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "_") || first == UInt8(ascii: ":")
            || (first >= 97 && first <= 122) || (first >= 65 && first <= 90)
        else { return false }
        return text.utf8.allSatisfy {
            $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90)
                || ($0 >= 48 && $0 <= 57)
        }
    }
}
