import Exposition
import Testing

/// Exact bytes for one small family of each kind, in both formats.
@Suite("Rendering by metric kind")
struct RenderingTests {
    static let counter = MetricFamily(
        name: "accelerator_energy_joules", help: "Energy consumed.", kind: .counter, unit: "joules",
        samples: [
            Sample(labels: [Label("gpu", "1")], value: 80_000_000_000),
            Sample(suffix: "_created", labels: [Label("gpu", "0")], value: 1_700_000_000.5),
            Sample(labels: [Label("gpu", "0")], value: 1.5),
        ])

    @Test func counterText() {
        #expect(
            render([Self.counter], .text) == """
                # HELP accelerator_energy_joules_total Energy consumed.
                # TYPE accelerator_energy_joules_total counter
                accelerator_energy_joules_total{gpu="0"} 1.5
                accelerator_energy_joules_total{gpu="1"} 80000000000

                """)
    }

    @Test func counterOpenMetrics() {
        #expect(
            render([Self.counter], .openMetrics) == """
                # HELP accelerator_energy_joules Energy consumed.
                # TYPE accelerator_energy_joules counter
                # UNIT accelerator_energy_joules joules
                accelerator_energy_joules_total{gpu="0"} 1.5
                accelerator_energy_joules_created{gpu="0"} 1700000000.5
                accelerator_energy_joules_total{gpu="1"} 80000000000
                # EOF

                """)
    }

    static let info = MetricFamily(
        name: "accelerator", help: "Static device facts.", kind: .info,
        samples: [Sample(labels: [Label("gpu", "0"), Label("model", "H200")], value: 1)])

    @Test func infoText() {
        #expect(
            render([Self.info], .text) == """
                # HELP accelerator_info Static device facts.
                # TYPE accelerator_info gauge
                accelerator_info{gpu="0",model="H200"} 1

                """)
    }

    @Test func infoOpenMetrics() {
        #expect(
            render([Self.info], .openMetrics) == """
                # HELP accelerator Static device facts.
                # TYPE accelerator info
                accelerator_info{gpu="0",model="H200"} 1
                # EOF

                """)
    }

    static let gauge = MetricFamily(
        name: "accelerator_power_watts", help: "Board power.", kind: .gauge, unit: "watts",
        samples: [
            Sample(labels: [Label("gpu", "1")], value: 0.42, timestampMilliseconds: 1_700_000_000_123),
            Sample(labels: [Label("gpu", "0")], value: 300),
        ])

    @Test func gaugeText() {
        #expect(
            render([Self.gauge], .text) == """
                # HELP accelerator_power_watts Board power.
                # TYPE accelerator_power_watts gauge
                accelerator_power_watts{gpu="0"} 300
                accelerator_power_watts{gpu="1"} 0.42 1700000000123

                """)
    }

    @Test func gaugeOpenMetrics() {
        #expect(
            render([Self.gauge], .openMetrics) == """
                # HELP accelerator_power_watts Board power.
                # TYPE accelerator_power_watts gauge
                # UNIT accelerator_power_watts watts
                accelerator_power_watts{gpu="0"} 300
                accelerator_power_watts{gpu="1"} 0.42 1700000000.123
                # EOF

                """)
    }

    static let unknown = MetricFamily(
        name: "legacy_value", help: "Nobody knows.", kind: .unknown, samples: [Sample(labels: [], value: -3)])

    @Test func unknownText() {
        #expect(render([Self.unknown], .text) == "# HELP legacy_value Nobody knows.\n# TYPE legacy_value untyped\nlegacy_value -3\n")
    }

    @Test func unknownOpenMetrics() {
        #expect(
            render([Self.unknown], .openMetrics)
                == "# HELP legacy_value Nobody knows.\n# TYPE legacy_value unknown\nlegacy_value -3\n# EOF\n")
    }

    /// Given in scrambled order, with bounds whose string order ("10" < "2.5") differs from their numeric order.
    static let histogram = MetricFamily(
        name: "scrape_duration_seconds", help: "Time spent scraping.", kind: .histogram, unit: "seconds",
        samples: [
            Sample(suffix: "_sum", labels: [Label("collector", "b")], value: 0),
            Sample(suffix: "_bucket", labels: [Label("collector", "a"), Label("le", "+Inf")], value: 3),
            Sample(suffix: "_created", labels: [Label("collector", "a")], value: 1_700_000_000),
            Sample(suffix: "_bucket", labels: [Label("collector", "a"), Label("le", "10")], value: 3),
            Sample(suffix: "_count", labels: [Label("collector", "b")], value: 0),
            Sample(suffix: "_sum", labels: [Label("collector", "a")], value: 4.75),
            Sample(suffix: "_bucket", labels: [Label("collector", "b"), Label("le", "+Inf")], value: 0),
            Sample(suffix: "_bucket", labels: [Label("collector", "a"), Label("le", "2.5")], value: 2),
            Sample(suffix: "_count", labels: [Label("collector", "a")], value: 3),
            Sample(suffix: "_bucket", labels: [Label("collector", "a"), Label("le", "0.5")], value: 1),
        ])

    @Test func histogramText() {
        #expect(
            render([Self.histogram], .text) == """
                # HELP scrape_duration_seconds Time spent scraping.
                # TYPE scrape_duration_seconds histogram
                scrape_duration_seconds_bucket{collector="a",le="0.5"} 1
                scrape_duration_seconds_bucket{collector="a",le="2.5"} 2
                scrape_duration_seconds_bucket{collector="a",le="10"} 3
                scrape_duration_seconds_bucket{collector="a",le="+Inf"} 3
                scrape_duration_seconds_count{collector="a"} 3
                scrape_duration_seconds_sum{collector="a"} 4.75
                scrape_duration_seconds_bucket{collector="b",le="+Inf"} 0
                scrape_duration_seconds_count{collector="b"} 0
                scrape_duration_seconds_sum{collector="b"} 0

                """)
    }

    @Test func histogramOpenMetrics() {
        #expect(
            render([Self.histogram], .openMetrics) == """
                # HELP scrape_duration_seconds Time spent scraping.
                # TYPE scrape_duration_seconds histogram
                # UNIT scrape_duration_seconds seconds
                scrape_duration_seconds_bucket{collector="a",le="0.5"} 1
                scrape_duration_seconds_bucket{collector="a",le="2.5"} 2
                scrape_duration_seconds_bucket{collector="a",le="10"} 3
                scrape_duration_seconds_bucket{collector="a",le="+Inf"} 3
                scrape_duration_seconds_count{collector="a"} 3
                scrape_duration_seconds_sum{collector="a"} 4.75
                scrape_duration_seconds_created{collector="a"} 1700000000
                scrape_duration_seconds_bucket{collector="b",le="+Inf"} 0
                scrape_duration_seconds_count{collector="b"} 0
                scrape_duration_seconds_sum{collector="b"} 0
                # EOF

                """)
    }

    static let summary = MetricFamily(
        name: "rpc_latency_seconds", help: "RPC latency.", kind: .summary,
        samples: [
            Sample(suffix: "_created", labels: [], value: 1_700_000_000),
            Sample(suffix: "_sum", labels: [], value: 1.2),
            Sample(labels: [Label("quantile", "0.99")], value: 0.3),
            Sample(suffix: "_count", labels: [], value: 7),
            Sample(labels: [Label("quantile", "0.5")], value: 0.012),
        ])

    @Test func summaryText() {
        #expect(
            render([Self.summary], .text) == """
                # HELP rpc_latency_seconds RPC latency.
                # TYPE rpc_latency_seconds summary
                rpc_latency_seconds{quantile="0.5"} 0.012
                rpc_latency_seconds{quantile="0.99"} 0.3
                rpc_latency_seconds_count 7
                rpc_latency_seconds_sum 1.2

                """)
    }

    @Test func summaryOpenMetrics() {
        #expect(
            render([Self.summary], .openMetrics) == """
                # HELP rpc_latency_seconds RPC latency.
                # TYPE rpc_latency_seconds summary
                rpc_latency_seconds{quantile="0.5"} 0.012
                rpc_latency_seconds{quantile="0.99"} 0.3
                rpc_latency_seconds_count 7
                rpc_latency_seconds_sum 1.2
                rpc_latency_seconds_created 1700000000
                # EOF

                """)
    }

    @Test("an empty exposition is empty text, and a bare # EOF in OpenMetrics")
    func empty() {
        #expect(render([], .text) == "")
        #expect(render([], .openMetrics) == "# EOF\n")
    }

    @Test("a family without samples still gets its metadata", arguments: ExpositionFormat.allCases)
    func familyWithoutSamples(_ format: ExpositionFormat) {
        let family = MetricFamily(name: "idle_total_ratio", help: "Idle.", kind: .gauge)
        #expect(render([family], format).hasPrefix("# HELP idle_total_ratio Idle.\n# TYPE idle_total_ratio gauge\n"))
    }
}
