import CustomMetricsAPI
import Synchronization

/// The latest scrape of every exporter, indexed by pod; answers metric questions about pods, nodes, namespaces and
/// workloads.
///
/// Writers (one per exporter target) replace their target's ``TargetData`` whole; readers copy the references they
/// need under the lock and compute outside it, so a 10k-pod query never blocks the scrapers for long.
public final class MetricStore: Sendable {
    /// Values from samples older than this many seconds are not served.
    public let maxAgeSeconds: Double
    private let clock: @Sendable () -> Double
    private let state: Mutex<State>

    private struct State {
        var rates: RateTracker
        var targets: [String: TargetData] = [:]
        /// namespace → pod → the targets that reported it (normally one; two while a pod's old node is stale).
        var pods: [String: [String: Set<String>]] = [:]
        /// node → targets.
        var nodes: [String: Set<String>] = [:]
    }

    /// `clock` returns Unix seconds (injectable for tests); counters become rates over `rateWindowSeconds`.
    public init(
        maxAgeSeconds: Double, rateWindowSeconds: Double = 60, clock: @escaping @Sendable () -> Double = { unixTimeNow() }
    ) {
        self.maxAgeSeconds = maxAgeSeconds
        self.clock = clock
        state = Mutex(State(rates: RateTracker(windowSeconds: rateWindowSeconds)))
    }

    /// Replaces the data of `data.target`, adding `<counter>:rate` series for the `rateCounters`.
    ///
    /// `ageByArrival`: the data's freshness starts when this store first saw its sample time (by the store's clock),
    /// not at the sample time itself, so an exporter whose clock runs ahead or behind cannot stretch or shrink how
    /// long its data is served; an exporter whose sampling stopped (the same sample time again) does not refresh
    /// it. A sample time further from the store's clock than the staleness bound is not served as the timestamp.
    public func update(_ data: TargetData, rateCounters: Set<String> = [], ageByArrival: Bool = false) {
        var data = data
        let now = clock()
        state.withLock { state in
            if ageByArrival {
                if let old = state.targets[data.target], old.reportedSampleTime == data.reportedSampleTime {
                    data.freshAsOf = old.freshAsOf
                } else {
                    data.freshAsOf = now
                }
                if abs(data.reportedSampleTime - now) > maxAgeSeconds { data.sampleTime = data.freshAsOf }
            }
            state.rates.apply(to: &data, counters: rateCounters)
            if let old = state.targets[data.target] { Self.unindex(old, in: &state) }
            state.targets[data.target] = data
            for pod in Set(data.podSeries.keys).union(data.podAccelerators.keys) {
                state.pods[pod.namespace, default: [:]][pod.name, default: []].insert(data.target)
            }
            state.nodes[data.node, default: []].insert(data.target)
        }
    }

    /// Forgets a target that left discovery.
    public func remove(target: String) {
        state.withLock { state in
            state.rates.forget(target: target)
            guard let old = state.targets.removeValue(forKey: target) else { return }
            Self.unindex(old, in: &state)
        }
    }

    private static func unindex(_ data: TargetData, in state: inout State) {
        for pod in Set(data.podSeries.keys).union(data.podAccelerators.keys) {
            state.pods[pod.namespace]?[pod.name]?.remove(data.target)
            if state.pods[pod.namespace]?[pod.name]?.isEmpty == true { state.pods[pod.namespace]?[pod.name] = nil }
            if state.pods[pod.namespace]?.isEmpty == true { state.pods[pod.namespace] = nil }
        }
        state.nodes[data.node]?.remove(data.target)
        if state.nodes[data.node]?.isEmpty == true { state.nodes[data.node] = nil }
    }

    /// Targets with data, fresh or not.
    public var targetCount: Int { state.withLock { $0.targets.count } }

    /// The pods of `namespace` (every namespace when nil) with fresh data, each with the freshest target that
    /// reported it.
    func pods(in namespace: String?) -> [(PodKey, TargetData)] {
        let oldest = clock() - maxAgeSeconds
        return state.withLock { state in
            var out: [(PodKey, TargetData)] = []
            let namespaces = namespace.map { [$0] } ?? Array(state.pods.keys)
            for ns in namespaces {
                guard let pods = state.pods[ns] else { continue }
                out.reserveCapacity(out.count + pods.count)
                for (name, targets) in pods {
                    if let data = Self.freshest(targets, in: state, notBefore: oldest) {
                        out.append((PodKey(namespace: ns, name: name), data))
                    }
                }
            }
            return out
        }
    }

    /// One pod's freshest data.
    func pod(_ key: PodKey) -> TargetData? {
        let oldest = clock() - maxAgeSeconds
        return state.withLock { state in
            state.pods[key.namespace]?[key.name].flatMap { Self.freshest($0, in: state, notBefore: oldest) }
        }
    }

    /// Nodes with fresh data (the freshest exporter of each).
    func nodes(named name: String? = nil) -> [TargetData] {
        let oldest = clock() - maxAgeSeconds
        return state.withLock { state in
            if let name {
                return state.nodes[name].flatMap { Self.freshest($0, in: state, notBefore: oldest) }.map { [$0] } ?? []
            }
            return state.nodes.values.compactMap { Self.freshest($0, in: state, notBefore: oldest) }
        }
    }

    private static func freshest(_ targets: Set<String>, in state: State, notBefore oldest: Double) -> TargetData? {
        var best: TargetData?
        for target in targets {
            guard let data = state.targets[target], data.freshAsOf >= oldest else { continue }
            if best == nil || data.freshAsOf > best!.freshAsOf { best = data }
        }
        return best
    }
}

/// Seconds since the Unix epoch, from the real-time clock.
public func unixTimeNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
