public import Accelerators
public import Exposition
public import Dispatch
public import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The time the sampler's loop paces itself by: how long a tick took and how long to wait for the next one.
///
/// Production uses `SystemSamplerClock` (CLOCK_MONOTONIC, a real wait). Tests pass a clock they advance by hand, so a
/// test of the loop waits for ticks it caused instead of sleeping through intervals. Ticks themselves (each source's
/// deadline, the sample stamps) always run on real time: a blocked source must miss its deadline whatever the clock.
public protocol SamplerClock: Sendable {
    /// The current instant.
    func now() -> MonotonicInstant

    /// Returns once `seconds` have passed on this clock, or as soon as `wake` is signalled (stop).
    func wait(seconds: Double, orUntil wake: DispatchSemaphore)
}

/// The real clock: CLOCK_MONOTONIC and a semaphore wait with a timeout.
public struct SystemSamplerClock: SamplerClock {
    public init() {}

    public func now() -> MonotonicInstant { .now() }

    public func wait(seconds: Double, orUntil wake: DispatchSemaphore) {
        _ = wake.wait(timeout: .now() + .nanoseconds(Int(seconds * 1e9)))
    }
}

/// Runs every source on its own worker in the background, one tick per interval, and hands each tick's merged
/// result to `publish`.
///
/// A source that blocks (a stuck file read, a hung library call) misses the tick's deadline: it reports
/// `_success 0`, its devices show `accelerator_up 0`, and it is not called again until the stuck call returns —
/// the other sources and the scrape path never wait for it.
public final class Sampler: Sendable {
    /// One collector's outcome in a tick: `accel_exporter_collector_success` and `_duration_seconds`.
    public struct CollectorStatus: Sendable, Equatable {
        /// The `collector` label value: a source's name, or a tick step's (`kubelet`, `pod_watch`, `tpu_runtime`).
        public var name: String
        /// Answered in time without an error.
        public var success: Bool
        /// For a source, from the tick's start until it returned (or until the tick gave up on it).
        public var durationSeconds: Double
        /// The error, or why the source missed the tick; nil on success.
        public var error: String?
    }

    /// One tick's merged view.
    public struct Tick: Sendable {
        /// Every source's devices, in source order, overlays applied; a source that missed the deadline contributes its
        /// last devices marked down.
        public var devices: [DeviceSample]
        /// Families beside the device schema: the sources' own, then what attribution and the tick steps add.
        public var extraFamilies: [Exposition.MetricFamily]
        /// One per source in source order, then any the tick steps add (`pod_watch`, `tpu_runtime`, the kubelet's).
        public var collectors: [CollectorStatus]
        /// Monotonic time the tick began; given to every source as `now`.
        public var startedAt: MonotonicInstant
        /// From the start of the tick until every source finished or the deadline passed.
        public var durationSeconds: Double
        /// Unix seconds when the tick began: the sample time consumers (the adapter) report.
        public var wallClockSeconds: Double = 0
    }

    private let workers: [Worker]
    private let interval: Double
    private let deadline: Double
    private let logger: Logger
    private let publish: @Sendable (Tick) -> Void
    private let clock: any SamplerClock
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    private struct State {
        var running = false
        var stopping = false
    }

    /// - Parameters:
    ///   - deadline: how long a tick waits for its sources (default: 80 % of the interval).
    ///   - clock: what the loop paces itself by (tests pass one they advance).
    public init(sources: [any AcceleratorSource], interval: Double, deadline: Double? = nil,
                clock: any SamplerClock = SystemSamplerClock(), logger: Logger,
                publish: @escaping @Sendable (Tick) -> Void) {
        self.workers = sources.map { Worker(source: $0) }
        self.clock = clock
        self.interval = interval
        self.deadline = deadline ?? interval * 0.8
        self.logger = logger
        self.publish = publish
    }

    /// Starts the loop on a thread of its own; the first tick runs at once.
    public func start() {
        let alreadyRunning = state.withLock { s -> Bool in
            if s.running { return true }
            s.running = true
            return false
        }
        guard !alreadyRunning else { return }
        let thread = DispatchQueue(label: "accel-exporter.sampler")
        thread.async { self.loop() }
    }

    /// Stops after the current tick; waits at most one deadline for it.
    public func stop() {
        let wasRunning = state.withLock { s -> Bool in
            guard s.running, !s.stopping else { return false }
            s.stopping = true
            return true
        }
        guard wasRunning else { return }
        wake.signal()
        _ = finished.wait(timeout: .now() + deadline + interval)
    }

    /// Runs exactly one tick synchronously (tests, benchmarks and the first tick before serving).
    @discardableResult
    public func tickOnce() -> Tick {
        let tick = runTick()
        publish(tick)
        return tick
    }

    private func loop() {
        while !state.withLock({ $0.stopping }) {
            let started = clock.now()
            publish(runTick())
            let elapsed = clock.now().seconds(since: started)
            let rest = max(0, interval - elapsed)
            // The semaphore doubles as an interruptible sleep: stop() signals it.
            clock.wait(seconds: rest, orUntil: wake)
        }
        finished.signal()
    }

    private func runTick() -> Tick {
        let started = MonotonicInstant.now()
        var wallClock = timespec()
        clock_gettime(CLOCK_REALTIME, &wallClock)
        let group = DispatchGroup()
        var dispatched: [Bool] = []
        for worker in workers {
            if worker.tryBegin() {
                group.enter()
                worker.queue.async {
                    worker.run(now: started)
                    group.leave()
                }
                dispatched.append(true)
            } else {
                dispatched.append(false)
            }
        }
        _ = group.wait(timeout: .now() + .nanoseconds(Int(deadline * 1e9)))

        var devices: [DeviceSample] = []
        var overlays: [[String: DeviceSample]] = []
        var families: [Exposition.MetricFamily] = []
        var statuses: [CollectorStatus] = []
        for (worker, wasDispatched) in zip(workers, dispatched) {
            switch worker.take(ifFinishedSince: started) {
            case .some(let (result, duration)) where wasDispatched:
                if worker.noteMissed(false) {
                    logger.info("collector answering again", metadata: ["collector": "\(worker.name)"])
                }
                devices += result.devices
                overlays.append(result.overlays)
                families += result.families
                statuses.append(CollectorStatus(name: worker.name, success: result.error == nil, durationSeconds: duration, error: result.error))
            default:
                let reason = wasDispatched
                    ? "did not finish within \(deadline)s"
                    : "still blocked in an earlier sample"
                if worker.noteMissed(true) {
                    logger.warning("collector missed its deadline", metadata: ["collector": "\(worker.name)", "reason": "\(reason)"])
                }
                devices += worker.lastDevices.map { DeviceSample(identity: $0.identity, up: false) }
                statuses.append(CollectorStatus(name: worker.name, success: false, durationSeconds: MonotonicInstant.now().seconds(since: started), error: reason))
            }
        }
        Self.applyOverlays(overlays, to: &devices)
        return Tick(devices: devices, extraFamilies: families, collectors: statuses, startedAt: started,
                    durationSeconds: MonotonicInstant.now().seconds(since: started),
                    wallClockSeconds: Double(wallClock.tv_sec) + Double(wallClock.tv_nsec) / 1e9)
    }

    /// Overlays (hwmon) win over the owning source's values for the same key; only answering devices take them.
    static func applyOverlays(_ overlays: [[String: DeviceSample]], to devices: inout [DeviceSample]) {
        guard overlays.contains(where: { !$0.isEmpty }) else { return }
        for i in devices.indices where devices[i].up {
            guard let pci = devices[i].identity.pciAddress else { continue }
            for set in overlays {
                if let overlay = set[pci] { devices[i].merge(overlay) }
            }
        }
    }
}

extension DeviceSample {
    /// Takes every value `other` has, keeping ours where it has none.
    mutating func merge(_ o: DeviceSample) {
        func m(_ a: inout [String: Double], _ b: [String: Double]) { a.merge(b) { _, new in new } }
        utilizationRatio = o.utilizationRatio ?? utilizationRatio
        m(&engineUtilizationRatio, o.engineUtilizationRatio)
        m(&memoryUsedBytes, o.memoryUsedBytes)
        m(&memoryTotalBytes, o.memoryTotalBytes)
        m(&temperatureCelsius, o.temperatureCelsius)
        powerWatts = o.powerWatts ?? powerWatts
        powerLimitWatts = o.powerLimitWatts ?? powerLimitWatts
        energyJoules = o.energyJoules ?? energyJoules
        m(&clockHertz, o.clockHertz)
        gtClockHertz.merge(o.gtClockHertz) { _, new in new }
        m(&fanSpeedRatio, o.fanSpeedRatio)
        m(&fanSpeedRPM, o.fanSpeedRPM)
        m(&voltageVolts, o.voltageVolts)
        pcieLinkSpeedTransfersPerSecond = o.pcieLinkSpeedTransfersPerSecond ?? pcieLinkSpeedTransfersPerSecond
        pcieLinkWidth = o.pcieLinkWidth ?? pcieLinkWidth
        m(&pcieBandwidthBytesPerSecond, o.pcieBandwidthBytesPerSecond)
        interconnectBytes.merge(o.interconnectBytes) { _, new in new }
        interconnectBytesPerSecond.merge(o.interconnectBytesPerSecond) { _, new in new }
        m(&throttleActive, o.throttleActive)
        m(&errors, o.errors)
    }
}

/// A source plus the serial queue it runs on.
///
/// `@unchecked Sendable`: `source` is touched only on `queue` (one call at a time, guarded by `busy`), and the
/// result slot only under its Mutex.
final class Worker: @unchecked Sendable {
    let source: any AcceleratorSource
    let name: String
    let queue: DispatchQueue
    private let slot = Mutex(Slot())

    private struct Slot {
        var busy = false
        var result: SourceResult?
        var duration = 0.0
        var finishedAt: MonotonicInstant?
        var lastDevices: [DeviceSample] = []
        var missing = false
    }

    /// Records whether the worker missed this tick; true when that changed (log once per transition, not per tick).
    func noteMissed(_ missed: Bool) -> Bool {
        slot.withLock { s in
            defer { s.missing = missed }
            return s.missing != missed
        }
    }

    init(source: any AcceleratorSource) {
        self.source = source
        self.name = source.name
        self.queue = DispatchQueue(label: "accel-exporter.collector.\(source.name)")
    }

    func tryBegin() -> Bool {
        slot.withLock { s in
            if s.busy { return false }
            s.busy = true
            return true
        }
    }

    func run(now: MonotonicInstant) {
        let begin = MonotonicInstant.now()
        let result = source.sample(now: now)
        let end = MonotonicInstant.now()
        slot.withLock { s in
            s.result = result
            s.duration = end.seconds(since: begin)
            s.finishedAt = end
            s.lastDevices = result.devices
            s.busy = false
        }
    }

    func take(ifFinishedSince start: MonotonicInstant) -> (SourceResult, Double)? {
        slot.withLock { s in
            guard let finished = s.finishedAt, finished >= start, let r = s.result else { return nil }
            return (r, s.duration)
        }
    }

    var lastDevices: [DeviceSample] { slot.withLock { $0.lastDevices } }
}
