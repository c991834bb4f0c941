public import Accelerators
public import Exposition
import Dispatch
import Inference
public import ScrapeClient
import Synchronization

/// A model server to scrape: the pod it runs in and its metrics URL.
public struct InferenceTarget: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var pod: String
    public var url: ScrapeURL
    /// Found only through the generic `prometheus.io/scrape` annotation, which most pods carry for other reasons:
    /// such a target is reported (`accel_exporter_inference_target_up`) only once it served a known engine's
    /// metrics, and while it does not it is probed once a minute rather than every sample.
    public var probe: Bool

    public init(namespace: String, pod: String, url: ScrapeURL, probe: Bool = false) {
        self.namespace = namespace
        self.pod = pod
        self.url = url
        self.probe = probe
    }

    public static func < (lhs: InferenceTarget, rhs: InferenceTarget) -> Bool {
        (lhs.namespace, lhs.pod, lhs.url.description) < (rhs.namespace, rhs.pod, rhs.url.description)
    }

    public var description: String { "\(namespace)/\(pod)" }

    /// Parses `--inference.targets`: `namespace/pod=http://host:port/path` entries separated by commas.
    public static func parseList(_ text: String) throws(ScrapeError) -> [InferenceTarget] {
        var out: [InferenceTarget] = []
        for entry in text.split(separator: ",") where !entry.allSatisfy({ $0 == " " }) {
            let trimmed = entry.drop { $0 == " " }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": expected namespace/pod=http://host:port/path")
            }
            let identity = trimmed[..<equals].split(separator: "/", omittingEmptySubsequences: false)
            guard identity.count == 2, !identity[0].isEmpty, !identity[1].isEmpty else {
                throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": the target must be named namespace/pod")
            }
            let url = try ScrapeURL(parsing: String(trimmed[trimmed.index(after: equals)...]))
            out.append(InferenceTarget(namespace: String(identity[0]), pod: String(identity[1]), url: url))
        }
        return out
    }
}

/// Turns one target's scraped families into the normalized `inference_*` families (the engine-specific part).
public protocol InferenceNormalizer: AnyObject {
    /// `families`: the target's parsed exposition; `time`: Unix seconds of the scrape. Returns the normalized
    /// families (labelled with the target's namespace and pod) and, when the target's data was refused, why.
    func normalize(_ families: [MetricFamily], target: InferenceTarget, time: Double) -> (families: [MetricFamily], problem: String?)
    /// Forget a target that left (its windows and counters).
    func forget(_ target: InferenceTarget)
}

/// Scrapes the node's model servers each sample tick, concurrently, each with a timeout and a size bound, through
/// the project's parser; a slow, dead or lying server affects only its own `accel_exporter_inference_target_up`.
public final class InferenceSource: AcceleratorSource, @unchecked Sendable {
    // @unchecked: `targets` and the normalizer are only touched on the sampler's worker queue for this source,
    // except `setTargets`, which goes through `pending` under its lock.
    public let name = "inference"
    private var targets: [InferenceTarget]
    private let pending = Mutex<[InferenceTarget]?>(nil)
    private let normalizer: any InferenceNormalizer
    private let timeoutSeconds: Double
    private let maxBytes: Int
    private let parallelism: Int
    private let clock: @Sendable () -> Double
    /// Probe targets that answered but served no known engine: not scraped again before the instant given.
    private var notModelServers: [InferenceTarget: MonotonicInstant] = [:]
    /// Probe targets that served a known engine: reported like named targets from then on.
    private var recognized: Set<InferenceTarget> = []
    /// How long a probe target that is not a model server is left alone.
    static let probeInterval = 60.0

    public init(
        targets: [InferenceTarget], normalizer: any InferenceNormalizer, timeoutSeconds: Double, maxBytes: Int = 16 << 20,
        parallelism: Int = 8, clock: @escaping @Sendable () -> Double
    ) {
        self.targets = targets.sorted()
        self.normalizer = normalizer
        self.timeoutSeconds = timeoutSeconds
        self.maxBytes = maxBytes
        self.parallelism = max(1, parallelism)
        self.clock = clock
    }

    /// Replaces the target list (from the pod watch); takes effect at the next tick.
    public func setTargets(_ targets: [InferenceTarget]) {
        pending.withLock { $0 = targets.sorted() }
    }

    public func sample(now: MonotonicInstant) -> SourceResult {
        if let next = pending.withLock({ list -> [InferenceTarget]? in defer { list = nil }; return list }) {
            let gone = Set(targets).subtracting(next)
            for target in gone {
                normalizer.forget(target)
                recognized.remove(target)
                notModelServers[target] = nil
            }
            targets = next
        }
        let current = targets.filter { target in
            guard let until = notModelServers[target] else { return true }
            return now >= until
        }
        var outcomes = [Outcome?](repeating: nil, count: current.count)
        let timeout = timeoutSeconds, limit = maxBytes
        outcomes.withUnsafeMutableBufferPointer { slots in
            let base = UncheckedPointer(slots.baseAddress)
            let lanes = min(parallelism, max(1, current.count))
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                var index = lane
                while index < current.count {
                    // Each index is written by exactly one lane.
                    base.pointer?[index] = Self.scrape(current[index], timeout: timeout, maxBytes: limit)
                    index += lanes
                }
            }
        }
        let time = clock()
        var families: [MetricFamily] = []
        var up = MetricFamily(
            name: "accel_exporter_inference_target_up",
            help: "1 if the model server's last scrape and parse succeeded, else 0.", kind: .gauge)
        var duration = MetricFamily(
            name: "accel_exporter_inference_target_scrape_duration_seconds",
            help: "Time the model server's last scrape took.", kind: .gauge, unit: "seconds")
        for (target, outcome) in zip(current, outcomes) {
            let labels = [Label("namespace", target.namespace), Label("pod", target.pod)]
            guard let outcome else { continue }
            var targetUp = false
            switch outcome.result {
            case .success(let parsed):
                let (normalized, problem) = normalizer.normalize(parsed, target: target, time: time)
                families += normalized
                targetUp = problem == nil
                if target.probe {
                    if normalized.isEmpty && !recognized.contains(target) {
                        notModelServers[target] = now.adding(seconds: Self.probeInterval)
                    } else if !normalized.isEmpty {
                        recognized.insert(target)
                        notModelServers[target] = nil
                    }
                }
            case .failure:
                if target.probe && !recognized.contains(target) { notModelServers[target] = now.adding(seconds: Self.probeInterval) }
            }
            // An unrecognized probe target is some other exporter: none of ours to report.
            guard !target.probe || recognized.contains(target) else { continue }
            duration.samples.append(Sample(labels: labels, value: outcome.seconds))
            up.samples.append(Sample(labels: labels, value: targetUp ? 1 : 0))
        }
        families.append(up)
        families.append(duration)
        return SourceResult(families: Self.merge(families))
    }

    struct Outcome {
        var result: Result<[MetricFamily], ScrapeError>
        var seconds: Double
    }

    static func scrape(_ target: InferenceTarget, timeout: Double, maxBytes: Int) -> Outcome {
        let started = MonotonicInstant.now()
        do {
            let response = try ScrapeClient.get(target.url, timeoutSeconds: timeout, maxBytes: maxBytes)
            let format: ExpositionFormat =
                response.header("content-type")?.contains("application/openmetrics-text") == true ? .openMetrics : .text
            do {
                let families = try ExpositionParser.parse(response.body, format: format)
                return Outcome(result: .success(families), seconds: MonotonicInstant.now().seconds(since: started))
            } catch {
                return Outcome(
                    result: .failure(ScrapeError(code: .protocolError, message: "unparsable exposition: \(error)")),
                    seconds: MonotonicInstant.now().seconds(since: started))
            }
        } catch {
            return Outcome(result: .failure(error), seconds: MonotonicInstant.now().seconds(since: started))
        }
    }

    /// One family per name: targets of the same engine contribute samples to the same families.
    static func merge(_ families: [MetricFamily]) -> [MetricFamily] {
        var order: [String] = []
        var byName: [String: MetricFamily] = [:]
        for family in families {
            if byName[family.name] == nil {
                order.append(family.name)
                byName[family.name] = family
            } else {
                byName[family.name]!.samples += family.samples
            }
        }
        return order.compactMap { byName[$0] }
    }
}

/// A raw pointer carried into `concurrentPerform`'s closure; each lane writes disjoint indices.
private struct UncheckedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>?
    init(_ pointer: UnsafeMutablePointer<T>?) { self.pointer = pointer }
}

/// ``InferenceNormalizer`` over the engine tables of the Inference module (vLLM, SGLang, TGI, Triton).
public final class EngineInferenceNormalizer: InferenceNormalizer {
    private let engine: EngineNormalizer

    public init(windowSeconds: Double) {
        engine = EngineNormalizer(windowSeconds: windowSeconds)
    }

    public func normalize(_ families: [MetricFamily], target: InferenceTarget, time: Double) -> (families: [MetricFamily], problem: String?) {
        let (normalized, problems) = engine.normalize(families, namespace: target.namespace, pod: target.pod, time: time)
        // An unknown server is down; a known one with a few refused series stays up and counts them.
        return (normalized, normalized.isEmpty ? problems.joined(separator: "; ") : nil)
    }

    public func forget(_ target: InferenceTarget) {
        engine.forget(namespace: target.namespace, pod: target.pod)
    }
}
