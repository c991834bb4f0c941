/// What `accel-simulator fleet` serves at a given time, as pure functions of the node's index and the wall clock,
/// so that a benchmark checking the adapter's answers (Benchmarks/adapter-chaos.sh) can compute the same values
/// and the same outages on its side without asking the fleet.
///
/// - Flapping: time is cut into rounds of `flapPeriod` seconds; in round `r = floor(t / flapPeriod)` node `i` is
///   down when `(i + r) % every == 0`, with `every = max(1, round(1 / flapFraction))`. So about `flapFraction` of
///   the nodes are down at once, a different set each round, and each node is down one round in `every`.
/// - Varying values: a pod's utilization is `((i * 7919 + pod * 104729 + s * 31) % 1000) / 1000` in second
///   `s = floor(t)`: it changes every second and differs between neighbouring pods and nodes.
public struct FleetSchedule: Sendable, Equatable {
    /// Seconds per flap round; 0: no node is ever down.
    public var flapPeriod: Double
    /// Share of the nodes down in each round (0 < f <= 1).
    public var flapFraction: Double
    /// Whether pod utilization changes every second (else a fixed 0.25).
    public var vary: Bool

    public init(flapPeriod: Double = 0, flapFraction: Double = 0.1, vary: Bool = false) {
        self.flapPeriod = flapPeriod
        self.flapFraction = flapFraction
        self.vary = vary
    }

    /// One node in `every` is down in each round.
    public var every: Int {
        guard flapFraction > 0 else { return Int.max }
        return max(1, Int((1 / flapFraction).rounded()))
    }

    /// Whether node `index` is down at unix time `time`.
    public func isDown(index: Int, time: Double) -> Bool {
        guard flapPeriod > 0, flapFraction > 0 else { return false }
        let round = Int((time / flapPeriod).rounded(.down))
        return (index + round) % every == 0
    }

    /// Pod `pod` of node `index`'s utilization (0...1) at unix time `time`.
    public func podUtilization(index: Int, pod: Int, time: Double) -> Double {
        guard vary else { return 0.25 }
        let second = Int(time.rounded(.down))
        return Double((index * 7919 + pod * 104_729 + second * 31) % 1000) / 1000
    }
}
