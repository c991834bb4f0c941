@testable import Accelerators
import AccelMetricsTesting
@testable import Exporter
import Dispatch
import Exposition
import HTTPServer
import Foundation
import Logging
import Synchronization
import Testing

/// A source whose behaviour the test scripts: answer, fail, or block until released.
final class ScriptedSource: AcceleratorSource, @unchecked Sendable {
    let name: String
    let release = DispatchSemaphore(value: 0)
    var block = false
    var error: String?
    var devices: [DeviceSample]
    var overlays: [String: DeviceSample] = [:]

    init(name: String, devices: [DeviceSample]) {
        self.name = name
        self.devices = devices
    }

    func sample(now: MonotonicInstant) -> SourceResult {
        if block { release.wait() }
        return SourceResult(devices: devices, overlays: overlays, error: error)
    }
}

func device(_ id: String, pci: String? = nil, utilization: Double? = 0.5) -> DeviceSample {
    var d = DeviceSample(identity: DeviceIdentity(accelerator: id, vendor: "amd", model: "MI300X", pciAddress: pci))
    d.utilizationRatio = utilization
    return d
}

@Suite struct SamplerTests {
    let logger = Logger(label: "test")

    @Test func aBlockedSourceMissesItsDeadlineWithoutDelayingTheOthers() {
        let stuck = ScriptedSource(name: "stuck", devices: [device("s1")])
        let healthy = ScriptedSource(name: "healthy", devices: [device("h1")])
        let sampler = Sampler(sources: [stuck, healthy], interval: 1, deadline: 0.2, logger: logger) { _ in }
        // First tick: both answer, so the stuck source's devices are known.
        let first = sampler.tickOnce()
        let firstOK = first.collectors.allSatisfy { $0.success }
        #expect(firstOK)

        stuck.block = true
        let started = Date()
        let second = sampler.tickOnce()
        #expect(Date().timeIntervalSince(started) < 0.8)
        #expect(second.collectors.first { $0.name == "stuck" }?.success == false)
        #expect(second.collectors.first { $0.name == "healthy" }?.success == true)
        #expect(second.devices.first { $0.identity.accelerator == "s1" }?.up == false)
        #expect(second.devices.first { $0.identity.accelerator == "h1" }?.up == true)

        // Still blocked: not called again, reported as such, and the tick is quick.
        let third = sampler.tickOnce()
        #expect(third.collectors.first { $0.name == "stuck" }?.error?.contains("still blocked") == true)
        stuck.block = false
        stuck.release.signal()
        // Once it returns, it is called again and recovers (within a bound: the worker notices the release first).
        let recovered = eventually(timeout: 5) {
            let tick = sampler.tickOnce()
            return tick.collectors.allSatisfy { $0.success } && tick.devices.allSatisfy { $0.up }
        }
        #expect(recovered)
    }

    @Test func aFailingSourceReportsFailureAndKeepsItsDevices() {
        let failing = ScriptedSource(name: "f", devices: [])
        failing.error = "cannot list class/drm"
        let sampler = Sampler(sources: [failing], interval: 1, logger: logger) { _ in }
        let tick = sampler.tickOnce()
        #expect(tick.collectors == [Sampler.CollectorStatus(name: "f", success: false, durationSeconds: tick.collectors[0].durationSeconds, error: "cannot list class/drm")])
    }

    @Test func overlaysWinByPCIAddressOnlyOnAnsweringDevices() {
        var up = device("a", pci: "0000:03:00.0")
        up.powerWatts = 100
        up.temperatureCelsius = ["edge": 40, "junction": 50]
        var down = device("b", pci: "0000:04:00.0")
        down.up = false
        var overlay = DeviceSample(identity: DeviceIdentity(accelerator: "", vendor: "", model: ""))
        overlay.powerWatts = 300
        overlay.temperatureCelsius = ["junction": 70]
        var devices = [up, down]
        Sampler.applyOverlays([["0000:03:00.0": overlay, "0000:04:00.0": overlay]], to: &devices)
        #expect(devices[0].powerWatts == 300)
        #expect(devices[0].temperatureCelsius == ["edge": 40, "junction": 70])
        #expect(devices[1].powerWatts == nil)
    }

    @Test func theLoopPublishesTicksAndStops() {
        let source = ScriptedSource(name: "s", devices: [device("x")])
        let count = Counter()
        let clock = ManualSamplerClock()
        let sampler = Sampler(sources: [source], interval: 0.05, clock: clock, logger: logger) { _ in count.increment() }
        sampler.start()
        // The first tick runs at once; each later one once the clock has moved by an interval.
        #expect(eventually { count.value == 1 })
        for expected in 2...5 {
            clock.advance(by: 0.05)
            #expect(eventually { count.value == expected })
        }
        sampler.stop()
        let afterStop = count.value
        #expect(afterStop == 5)
        // The loop has ended: however far the clock moves, no tick follows.
        clock.advance(by: 10)
        #expect(count.value == afterStop)
    }
}

/// A sampler clock the test moves by hand: the loop's wait for the next tick returns once `advance(by:)` has moved
/// it past the wait's end (or at once when the sampler stops).
final class ManualSamplerClock: SamplerClock {
    private let instant = Mutex(MonotonicInstant(nanoseconds: 1_000_000_000))

    func now() -> MonotonicInstant { instant.withLock { $0 } }

    func advance(by seconds: Double) {
        instant.withLock { $0 = MonotonicInstant(nanoseconds: $0.nanoseconds + UInt64(seconds * 1e9)) }
    }

    func wait(seconds: Double, orUntil wake: DispatchSemaphore) {
        let end = now().nanoseconds + UInt64(seconds * 1e9)
        // A short real wait per check: the test's advance is noticed within a millisecond, stop() at once.
        while now().nanoseconds < end {
            if wake.wait(timeout: .now() + .milliseconds(1)) == .success { return }
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

@Suite struct ExporterInProcessTests {
    @Test func readinessFollowsTheSamplerAndNotTheSources() async throws {
        var config = Exporter.Configuration()
        config.collectors = []
        config.listenHost = "127.0.0.1"
        config.listenPort = 0
        config.interval = 0.1
        let failing = ScriptedSource(name: "f", devices: [])
        failing.error = "broken"
        let exporter = Exporter(configuration: config, logger: Logger(label: "t"), extraSources: [failing])
        #expect(exporter.readiness().0 == false)
        try await exporter.start()
        #expect(exporter.readiness().0 == true)
        await exporter.stop()
        // No tick for more than 3 intervals: not ready any more.
        try await Task.sleep(for: .milliseconds(500))
        let (ready, reason) = exporter.readiness()
        #expect(!ready)
        #expect(reason.contains("last sample completed"))
    }
}
