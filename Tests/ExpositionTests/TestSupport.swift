import Exposition

/// Renders into a fresh buffer and decodes it, so expectations can be written as string literals.
func render(_ families: [MetricFamily], _ format: ExpositionFormat) -> String {
    var buffer: [UInt8] = []
    ExpositionEncoder.encode(families, format: format, into: &buffer)
    return String(decoding: buffer, as: UTF8.self)
}

/// Renders one gauge sample and returns just its sample line, without metadata or `# EOF`.
func sampleLine(labels: [Label] = [], value: Double, timestamp: Int64? = nil, _ format: ExpositionFormat) -> String {
    let family = MetricFamily(
        name: "probe", help: "Probe.", kind: .gauge,
        samples: [Sample(labels: labels, value: value, timestampMilliseconds: timestamp)])
    let lines = render([family], format).split(separator: "\n", omittingEmptySubsequences: false)
    return String(lines[2])
}

/// A family of every kind, with values, labels and timestamps that exercise the formats' edge cases while
/// staying valid for the strict parsers (promtool's lints, the OpenMetrics grammar).
let richFamilies: [MetricFamily] = [
    MetricFamily(
        name: "accelerator_temperature_celsius", help: "Die temperature.\nReported by the \"driver\" \\ firmware.",
        kind: .gauge, unit: "celsius",
        samples: [
            Sample(labels: [Label("gpu", "1"), Label("sensor", "hot\"spot")], value: 81.5),
            Sample(labels: [Label("gpu", "0"), Label("sensor", "edge\\n")], value: 42),
            Sample(labels: [Label("gpu", "0"), Label("sensor", "line\nbreak")], value: -0.0),
            Sample(labels: [Label("gpu", "2"), Label("sensor", "missing")], value: .nan),
            Sample(labels: [Label("gpu", "3"), Label("sensor", "runaway")], value: .infinity),
            Sample(labels: [Label("gpu", "4"), Label("sensor", "frozen")], value: -.infinity),
        ]),
    MetricFamily(
        name: "accelerator_energy_joules", help: "Energy consumed since driver load.", kind: .counter, unit: "joules",
        samples: [
            Sample(labels: [Label("gpu", "1")], value: 80_000_000_000),
            Sample(suffix: "_created", labels: [Label("gpu", "1")], value: 1_700_000_000.25),
            Sample(labels: [Label("gpu", "0")], value: 1e-05),
            Sample(suffix: "_created", labels: [Label("gpu", "0")], value: 1_700_000_000),
        ]),
    MetricFamily(
        name: "accelerator", help: "Static facts about each device.", kind: .info,
        samples: [
            Sample(labels: [Label("gpu", "0"), Label("model", "NVIDIA H200"), Label("uuid", "GPU-0")], value: 1),
            Sample(labels: [Label("gpu", "1"), Label("model", "AMD Instinct MI300X"), Label("uuid", "GPU-1")], value: 1),
        ]),
    MetricFamily(
        name: "accelerator_scrape_duration_seconds", help: "Time spent reading each device.", kind: .histogram,
        unit: "seconds",
        samples: [
            Sample(suffix: "_sum", labels: [Label("collector", "nvml")], value: 0.125),
            Sample(suffix: "_bucket", labels: [Label("collector", "nvml"), Label("le", "+Inf")], value: 3),
            Sample(suffix: "_bucket", labels: [Label("collector", "nvml"), Label("le", "0.1")], value: 2),
            Sample(suffix: "_bucket", labels: [Label("collector", "nvml"), Label("le", "0.01")], value: 1),
            Sample(suffix: "_count", labels: [Label("collector", "nvml")], value: 3),
            Sample(suffix: "_created", labels: [Label("collector", "nvml")], value: 1_700_000_000),
            Sample(suffix: "_bucket", labels: [Label("collector", "amdsmi"), Label("le", "0.01")], value: 0),
            Sample(suffix: "_bucket", labels: [Label("collector", "amdsmi"), Label("le", "0.1")], value: 0),
            Sample(suffix: "_bucket", labels: [Label("collector", "amdsmi"), Label("le", "+Inf")], value: 0),
            Sample(suffix: "_count", labels: [Label("collector", "amdsmi")], value: 0),
            Sample(suffix: "_sum", labels: [Label("collector", "amdsmi")], value: 0),
        ]),
    MetricFamily(
        name: "accelerator_rpc_latency_seconds", help: "Latency of driver calls.", kind: .summary, unit: "seconds",
        samples: [
            Sample(labels: [Label("quantile", "0.99")], value: 0.3),
            Sample(labels: [Label("quantile", "0.5")], value: 0.012),
            Sample(suffix: "_count", labels: [], value: 7),
            Sample(suffix: "_sum", labels: [], value: 1.2),
        ]),
    MetricFamily(
        name: "accelerator_legacy_reading", help: "A value whose type nobody knows.", kind: .unknown,
        samples: [Sample(labels: [], value: 3)]),
    MetricFamily(
        name: "accelerator_power_watts", help: "Board power, stamped with the driver's sample time.", kind: .gauge,
        unit: "watts",
        samples: [
            Sample(labels: [Label("gpu", "0")], value: 312.75, timestampMilliseconds: 1_700_000_000_123),
            Sample(labels: [Label("gpu", "1")], value: 0, timestampMilliseconds: 1_700_000_000_000),
        ]),
]
