public import Exposition

/// DESIGN.md's device schema: the one place that names families, types, units and labels.
///
/// Every source fills `DeviceSample`; this turns a tick's samples into families. Device series carry exactly
/// `accelerator`, `vendor`, `model` plus at most one family-specific label; static facts go on `accelerator_info`.
public enum Schema {
    public static func families(for devices: [DeviceSample]) -> [MetricFamily] {
        var b = Builder()
        for d in devices {
            let base = [Label("accelerator", d.identity.accelerator), Label("vendor", d.identity.vendor), Label("model", d.identity.model)]
            b.add("accelerator", base + d.identity.infoPairs.map { Label($0.name, $0.value) }, 1)
            b.add("accelerator_up", base, d.up ? 1 : 0)
            guard d.up else { continue }
            b.add("accelerator_utilization_ratio", base, d.utilizationRatio)
            b.add("accelerator_engine_utilization_ratio", base, "engine", d.engineUtilizationRatio)
            b.add("accelerator_memory_used_bytes", base, "memory", d.memoryUsedBytes)
            b.add("accelerator_memory_total_bytes", base, "memory", d.memoryTotalBytes)
            b.add("accelerator_memory_reserved_bytes", base, "memory", d.memoryReservedBytes)
            b.add("accelerator_temperature_celsius", base, "sensor", d.temperatureCelsius)
            b.add("accelerator_power_watts", base, d.powerWatts)
            b.add("accelerator_power_limit_watts", base, d.powerLimitWatts)
            b.add("accelerator_energy_joules", base, d.energyJoules)
            b.add("accelerator_clock_hertz", base, "clock", d.clockHertz)
            for (key, value) in d.gtClockHertz.sorted(by: { $0.key < $1.key }) {
                b.add("accelerator_clock_hertz", base + [Label("clock", key.clock), Label("gt", key.gt)], value)
            }
            b.add("accelerator_fan_speed_ratio", base, "sensor", d.fanSpeedRatio)
            b.add("accelerator_fan_speed_rpm", base, "sensor", d.fanSpeedRPM)
            b.add("accelerator_voltage_volts", base, "sensor", d.voltageVolts)
            b.add("accelerator_pcie_link_speed_transfers_per_second", base, d.pcieLinkSpeedTransfersPerSecond)
            b.add("accelerator_pcie_link_width", base, d.pcieLinkWidth)
            b.add("accelerator_pcie_throughput_bytes_per_second", base, "direction", d.pcieThroughputBytesPerSecond)
            for (key, value) in d.interconnectBytes.sorted(by: { $0.key < $1.key }) {
                b.add("accelerator_interconnect_bytes", base + [Label("link", key.link), Label("direction", key.direction)], value)
            }
            b.add("accelerator_throttle_active", base, "reason", d.throttleActive)
            b.add("accelerator_performance_state", base, d.performanceState)
            b.add("accelerator_errors", base, "type", d.errors)
            b.add("accelerator_volatile_errors", base, "type", d.volatileErrors)
            b.add("accelerator_row_remap_pending", base, d.rowRemapPending)
            b.add("accelerator_row_remap_failure", base, d.rowRemapFailure)
            b.add("accelerator_retired_pages_pending", base, d.retiredPagesPending)
            b.add("accelerator_xid_errors", base, "xid", d.xidErrors)
            b.add("accelerator_tpu_hbm_utilization_ratio", base, d.hbmUtilizationRatio)
            b.add("accelerator_tpu_hlo_queue_size", base, d.hloQueueSize)
            b.add("accelerator_tpu_hlo_execution_seconds", base, d.hloExecutionSeconds)
        }
        return b.finish()
    }

    /// Name, help, kind and unit of every device family, in one table (the README's metric reference mirrors it).
    public static let definitions: [String: (help: String, kind: MetricFamily.Kind, unit: String?)] = [
        "accelerator": ("Static facts about an accelerator (PCI bus id, driver, firmware, serial, node); value 1.", .info, nil),
        "accelerator_up": ("1 when the accelerator answered this sample, 0 when it stopped answering.", .gauge, nil),
        "accelerator_utilization_ratio": ("Fraction of time the main compute engine was busy (0-1).", .gauge, "ratio"),
        "accelerator_engine_utilization_ratio": ("Fraction of time an engine was busy (0-1).", .gauge, "ratio"),
        "accelerator_memory_used_bytes": ("Device memory in use.", .gauge, "bytes"),
        "accelerator_memory_total_bytes": ("Device memory size.", .gauge, "bytes"),
        "accelerator_memory_reserved_bytes": ("Device memory reserved by the driver and firmware (not in used).", .gauge, "bytes"),
        "accelerator_temperature_celsius": ("Temperature of a sensor on the accelerator.", .gauge, "celsius"),
        "accelerator_power_watts": ("Power draw (average where the hardware averages, else instantaneous).", .gauge, "watts"),
        "accelerator_power_limit_watts": ("Enforced power limit (cap).", .gauge, "watts"),
        "accelerator_energy_joules": ("Energy consumed since the driver loaded.", .counter, "joules"),
        "accelerator_clock_hertz": ("Current clock frequency.", .gauge, "hertz"),
        "accelerator_fan_speed_ratio": ("Fan speed as a fraction of its maximum (0-1).", .gauge, "ratio"),
        "accelerator_fan_speed_rpm": ("Fan speed in revolutions per minute.", .gauge, nil),
        "accelerator_voltage_volts": ("Voltage of a rail.", .gauge, "volts"),
        "accelerator_pcie_link_speed_transfers_per_second": ("Current PCIe link speed per lane.", .gauge, "transfers_per_second"),
        "accelerator_pcie_link_width": ("Current PCIe link width in lanes.", .gauge, nil),
        "accelerator_pcie_throughput_bytes_per_second": ("PCIe throughput.", .gauge, "bytes_per_second"),
        "accelerator_interconnect_bytes": ("Bytes moved over a device interconnect link (NVLink, XGMI).", .counter, "bytes"),
        "accelerator_throttle_active": ("1 while the reason holds the clocks down, else 0.", .gauge, nil),
        "accelerator_errors": ("Hardware errors over the device's lifetime, by type.", .counter, nil),
        "accelerator_volatile_errors": ("Hardware errors since the driver loaded (reset by a reload; never add to accelerator_errors_total).", .counter, nil),
        "accelerator_performance_state": ("Performance state: 0 (P0, maximum) to 15 (P15, minimum).", .gauge, nil),
        "accelerator_row_remap_pending": ("1 while a memory row remapping waits for a GPU reset.", .gauge, nil),
        "accelerator_row_remap_failure": ("1 when a memory row remapping failed (the GPU needs service).", .gauge, nil),
        "accelerator_retired_pages_pending": ("1 while retired memory pages wait for a driver reload.", .gauge, nil),
        "accelerator_xid_errors": ("XID critical errors seen since the exporter started, by XID.", .counter, nil),
        "accelerator_tpu_hbm_utilization_ratio": ("libtpu's HBM utilization (tpu.runtime.hbm.utilization.percent) as 0-1; whether it measures bandwidth or capacity is unverified.", .gauge, "ratio"),
        "accelerator_tpu_hlo_queue_size": ("HLO programs waiting in the TPU's execution queue (libtpu runtime metrics).", .gauge, nil),
        "accelerator_tpu_hlo_execution_seconds": ("Execution time of HLO programs on the TPU while the workload runs (libtpu runtime metrics).", .histogram, "seconds"),
    ]

    /// A bucket bound as an `le` value: `1.0`, `0.25`, `5e-05` (Swift's shortest round-trip spelling).
    static func formatBound(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)).0" : "\(value)"
    }

    struct Builder {
        var families: [String: MetricFamily] = [:]

        mutating func add(_ name: String, _ labels: [Label], _ value: Double?) {
            guard let value else { return }
            if families[name] == nil {
                let d = Schema.definitions[name]!
                families[name] = MetricFamily(name: name, help: d.help, kind: d.kind, unit: d.unit)
            }
            families[name]!.samples.append(Sample(labels: labels, value: value))
        }

        mutating func add(_ name: String, _ labels: [Label], _ key: String, _ values: [String: Double]) {
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { add(name, labels + [Label(key, k)], v) }
        }

        /// A histogram series: cumulative `_bucket{le}` samples, `+Inf` equal to the count, then `_sum` and `_count`.
        mutating func add(_ name: String, _ labels: [Label], _ histogram: DeviceHistogram?) {
            guard let histogram else { return }
            if families[name] == nil {
                let d = Schema.definitions[name]!
                families[name] = MetricFamily(name: name, help: d.help, kind: d.kind, unit: d.unit)
            }
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
