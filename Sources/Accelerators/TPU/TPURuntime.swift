/// What the TPU source needs from libtpu's runtime-metrics service, without knowing gRPC: the client
/// (`TPURuntimeClient`) polls on its own loop and the source reads its latest reports each tick.

/// One runtime-metrics endpoint to poll: a workload's libtpu.
public struct TPURuntimeTarget: Sendable, Hashable, CustomStringConvertible {
    /// `host:port` (`localhost:8431`, `10.4.0.7:8431`, `[fd00::7]:8431`).
    public var address: String
    /// PCI addresses of the chips this workload's libtpu sees, in its device-ordinal order; nil: every TPU chip of
    /// the node, in PCI address order (a workload holding the whole host). A pod given some of a host's chips numbers
    /// them from 0 too, so whoever finds its address (the pod watch) also passes the chips it holds.
    public var chips: [String]?
    /// Who listens there (`namespace/pod`), for log lines only.
    public var owner: String?

    /// `chips` nil: the workload holds every TPU chip of the node.
    public init(address: String, chips: [String]? = nil, owner: String? = nil) {
        self.address = address
        self.chips = chips
        self.owner = owner
    }

    /// The address, with the owner in parentheses when known.
    public var description: String { owner.map { "\(address) (\($0))" } ?? address }
}

/// One poll's values, by the index libtpu gave them. Already checked: finite, in range, the right kind.
public struct TPURuntimeSnapshot: Sendable, Equatable {
    /// `tpu.runtime.hbm.memory.usage.bytes`, by device ordinal.
    public var hbmUsedBytes: [Int: Double] = [:]
    /// `tpu.runtime.hbm.memory.total.bytes`, by device ordinal.
    public var hbmTotalBytes: [Int: Double] = [:]
    /// `tpu.runtime.tensorcore.dutycycle.percent`, by chip (reference) — or by device on libtpu versions that
    /// report one per core; the source tells the two apart by count.
    public var dutyCyclePercent: [Int: Double] = [:]
    /// `tpu.runtime.hbm.utilization.percent`, indexed like the duty cycle.
    public var hbmUtilizationPercent: [Int: Double] = [:]
    /// `hlo.queue.size.gauge`, by device ordinal.
    public var hloQueueSize: [Int: Double] = [:]
    /// `hlo.execution.timing.distribution.microseconds` converted to seconds, by device ordinal.
    public var hloExecutionSeconds: [Int: DeviceHistogram] = [:]

    /// No values.
    public init() {}
}

/// The client's view of one target.
public struct TPURuntimeReport: Sendable, Equatable {
    /// Where the client stands with a target.
    public enum State: Sendable, Equatable {
        /// Not attempted yet.
        case connecting
        /// The last poll answered.
        case answering
        /// Nothing listens there (connection refused, the server went away): no workload runs. Not an error.
        case noWorkload(String)
        /// It answered wrongly, too late, or with an error status.
        case failing(String)
    }

    /// The polled endpoint.
    public var target: TPURuntimeTarget
    /// The latest state; while failing, ``snapshot`` keeps the last good values until they are stale.
    public var state: State
    /// The last good poll's values; nil before one and once older than the client's staleness bound.
    public var snapshot: TPURuntimeSnapshot?
    /// Seconds the last poll took (or failed after).
    public var durationSeconds: Double

    /// Built by the client; tests and fakes build them by hand.
    public init(target: TPURuntimeTarget, state: State, snapshot: TPURuntimeSnapshot?, durationSeconds: Double = 0) {
        self.target = target
        self.state = state
        self.snapshot = snapshot
        self.durationSeconds = durationSeconds
    }
}

/// The seam between the TPU source and whatever polls libtpu (the gRPC client; scripted values in tests).
public protocol TPURuntimeReadings: AnyObject, Sendable {
    /// Starts polling; repeated calls do nothing. The source calls it once it found a chip, so nodes without TPUs
    /// never poll anything.
    func activate()
    /// The latest state of every target; never waits on the network.
    var reports: [TPURuntimeReport] { get }
}
