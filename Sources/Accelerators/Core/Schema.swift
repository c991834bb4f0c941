public import Exposition
import MetricSchema

/// Turns a tick's `DeviceSample`s into the device families that `MetricSchema` defines.
///
/// Every source fills `DeviceSample`; this is the one renderer. Device series carry the identity labels
/// (`accelerator`, `vendor`, `model`, `pci_bus_id`) plus at most two family-specific ones; static facts go on
/// `accelerator_info`.
public enum Schema {
    private typealias F = Families.Device

    /// The labels every series of the device carries: `accelerator`, `vendor`, `model`, `pci_bus_id`.
    public static func identityLabels(_ identity: DeviceIdentity) -> [Label] {
        var labels = [
            Label(SchemaLabel.accelerator, identity.accelerator), Label(SchemaLabel.vendor, identity.vendor),
            Label(SchemaLabel.model, identity.model),
        ]
        if let pci = identity.pciAddress, !pci.isEmpty { labels.append(Label(SchemaLabel.pciBusID, pci)) }
        return labels
    }

    /// Every device family the samples fill, sorted by name; a device that is not up gets only its
    /// `accelerator_info` and `accelerator_up 0` series.
    public static func families(for devices: [DeviceSample]) -> [MetricFamily] {
        var b = Builder()
        for d in devices {
            let base = identityLabels(d.identity)
            let identityNames = Set(base.map(\.name))
            b.add(F.info, base + d.identity.infoPairs.filter { !identityNames.contains($0.name) }.map { Label($0.name, $0.value) }, 1)
            b.add(F.up, base, d.up ? 1 : 0)
            guard d.up else { continue }
            b.add(F.utilization, base, d.utilizationRatio)
            b.add(F.engineUtilization, base, "engine", d.engineUtilizationRatio)
            b.add(F.memoryUsed, base, "memory", d.memoryUsedBytes)
            b.add(F.memoryTotal, base, "memory", d.memoryTotalBytes)
            b.add(F.memoryReserved, base, "memory", d.memoryReservedBytes)
            b.add(F.temperature, base, "sensor", d.temperatureCelsius)
            b.add(F.power, base, d.powerWatts)
            b.add(F.powerLimit, base, d.powerLimitWatts)
            b.add(F.energy, base, d.energyJoules)
            b.add(F.clock, base, "clock", d.clockHertz)
            for (key, value) in d.gtClockHertz.sorted(by: { $0.key < $1.key }) {
                b.add(F.clock, base + [Label("clock", key.clock), Label("gt", key.gt)], value)
            }
            b.add(F.fanSpeedRatio, base, "sensor", d.fanSpeedRatio)
            b.add(F.fanSpeedRPM, base, "sensor", d.fanSpeedRPM)
            b.add(F.voltage, base, "sensor", d.voltageVolts)
            b.add(F.pcieLinkSpeed, base, d.pcieLinkSpeedTransfersPerSecond)
            b.add(F.pcieLinkWidth, base, d.pcieLinkWidth)
            b.add(F.pcieBandwidth, base, "direction", d.pcieBandwidthBytesPerSecond)
            for (key, value) in d.interconnectBytes.sorted(by: { $0.key < $1.key }) {
                b.add(F.interconnect, base + [Label("link", key.link), Label("direction", key.direction)], value)
            }
            for (key, value) in d.interconnectBytesPerSecond.sorted(by: { $0.key < $1.key }) {
                b.add(F.interconnectBandwidth, base + [Label("link", key.link), Label("direction", key.direction)], value)
            }
            b.add(F.smActive, base, d.smActiveRatio)
            b.add(F.smOccupancy, base, d.smOccupancyRatio)
            b.add(F.pipeActive, base, "pipe", d.pipeActiveRatio)
            b.add(F.memoryBandwidthUtilization, base, d.memoryBandwidthUtilizationRatio)
            b.add(F.throttle, base, "reason", d.throttleActive)
            b.add(F.performanceState, base, d.performanceState)
            b.add(F.errors, base, "type", d.errors)
            b.add(F.volatileErrors, base, "type", d.volatileErrors)
            b.add(F.rowRemapPending, base, d.rowRemapPending)
            b.add(F.rowRemapFailure, base, d.rowRemapFailure)
            b.add(F.retiredPagesPending, base, d.retiredPagesPending)
            b.add(F.xidErrors, base, "xid", d.xidErrors)
            b.add(F.tpuHBMUtilization, base, d.hbmUtilizationRatio)
            b.add(F.tpuHLOQueueSize, base, d.hloQueueSize)
            b.add(F.tpuHLOExecution, base, d.hloExecutionSeconds)
        }
        return b.finish()
    }

    /// A bucket bound as an `le` value: `1.0`, `0.25`, `5e-05` (Swift's shortest round-trip spelling).
    static func formatBound(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)).0" : "\(value)"
    }

    struct Builder {
        var families: [String: MetricFamily] = [:]

        mutating func add(_ definition: FamilyDefinition, _ labels: [Label], _ value: Double?) {
            guard let value else { return }
            families[definition.name, default: definition.family()].samples.append(Sample(labels: labels, value: value))
        }

        mutating func add(_ definition: FamilyDefinition, _ labels: [Label], _ key: String, _ values: [String: Double]) {
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { add(definition, labels + [Label(key, k)], v) }
        }

        /// A histogram series: cumulative `_bucket{le}` samples, `+Inf` equal to the count, then `_sum` and `_count`.
        mutating func add(_ definition: FamilyDefinition, _ labels: [Label], _ histogram: DeviceHistogram?) {
            guard let histogram else { return }
            let name = definition.name
            if families[name] == nil { families[name] = definition.family() }
            var cumulative = 0.0
            for (bound, count) in zip(histogram.upperBounds, histogram.bucketCounts) {
                cumulative += count
                families[name]!.samples.append(Sample(suffix: "_bucket", labels: labels + [Label("le", Schema.formatBound(bound))], value: cumulative))
            }
            families[name]!.samples.append(Sample(suffix: "_bucket", labels: labels + [Label("le", "+Inf")], value: histogram.count))
            families[name]!.samples.append(Sample(suffix: "_sum", labels: labels, value: histogram.sum))
            families[name]!.samples.append(Sample(suffix: "_count", labels: labels, value: histogram.count))
        }

        func finish() -> [MetricFamily] { families.values.sorted { $0.name < $1.name } }
    }
}
