@testable import Exporter
import Exposition
import Inference
import ScrapeClient
import Testing

/// A pod's own families for autoscaling (`accelmetrics.io/metrics`): found by annotation, taken within bounds, each
/// refusal with its reason and nothing else lost.
@Suite struct WorkloadMetricsTests {
    @Test func discoveryFindsWorkloadPodsAndTheirPorts() {
        let pods = [
            InferenceDiscoveryTests.entry("app", annotations: ["accelmetrics.io/metrics": "app_queue_depth, app_inflight", "accelmetrics.io/port": "8080"]),
            InferenceDiscoveryTests.entry("app-default-port", annotations: ["accelmetrics.io/metrics": "app_queue_depth"], ports: [9100]),
            InferenceDiscoveryTests.entry("model-server", annotations: [
                "inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "8000", "accelmetrics.io/metrics": "app_queue_depth",
            ]),
            InferenceDiscoveryTests.entry("bad", annotations: ["accelmetrics.io/metrics": "app queue!"], ports: [80]),
        ]
        let targets = InferenceDiscovery.targets(pods)
        let summary = targets.map { "\($0.pod) \($0.url) \($0.workloadFamilies) \($0.servesInference) \($0.configurationProblem ?? "-")" }
        #expect(summary == [
            "app http://10.0.0.7:8080/metrics [\"app_queue_depth\", \"app_inflight\"] false -",
            "app-default-port http://10.0.0.7:9100/metrics [\"app_queue_depth\"] false -",
            "model-server http://10.0.0.7:8000/metrics [\"app_queue_depth\"] true -",
            "bad http://10.0.0.7:80/metrics [] false annotation accelmetrics.io/metrics: \"appqueue!\" is not a metric name",
        ])
    }

    @Test func staticTargetsNameFamiliesWithAnOption() throws {
        let targets = try InferenceTarget.parseList("ml/a=http://10.0.0.1:8080/metrics;metrics=app_x|app_y;inference=false,ml/b=http://10.0.0.2:8000/metrics")
        #expect(targets.map(\.workloadFamilies) == [["app_x", "app_y"], []])
        #expect(targets.map(\.servesInference) == [false, true])
        #expect(throws: ScrapeError.self) { try InferenceTarget.parseList("ml/a=http://h:1/m;metrics=9bad") }
    }

    static func gauge(_ name: String, _ count: Int, labels: [Label] = []) -> MetricFamily {
        MetricFamily(name: name, help: "", kind: .gauge, samples: (0..<count).map { Sample(labels: labels + [Label("i", "\($0)")], value: Double($0)) })
    }

    @Test func boundsDropOnlyTheFamilyOverThem() {
        let limits = WorkloadMetrics.Limits(families: 5, seriesPerFamily: 3, labelValueLength: 8)
        let scraped = [
            Self.gauge("ok", 2, labels: [Label("namespace", "spoofed"), Label("pod", "other")]),
            Self.gauge("many", 4),
            Self.gauge("long", 1, labels: [Label("l", "123456789")]),
            Self.gauge("wide", 1, labels: (0..<6).map { Label("l\($0)", "v") }),
            MetricFamily(name: "hist", help: "", kind: .histogram, samples: [Sample(suffix: "_count", labels: [], value: 1)]),
            MetricFamily(name: "done", help: "", kind: .counter, samples: [Sample(suffix: "_total", labels: [], value: 7)]),
        ]
        let result = WorkloadMetrics.extract(
            scraped, names: ["ok", "many", "long", "wide", "hist", "done_total", "accelerator_up"], namespace: "ml", pod: "p", limits: limits)
        #expect(result.dropped == [
            "many": .tooManySeries, "long": .labelValueTooLong, "wide": .tooManyLabels, "hist": .unsupportedType,
            "done_total": .tooManyFamilies, "accelerator_up": .tooManyFamilies,
        ])
        #expect(result.families.map(\.name) == ["ok"])
        // The pod's own namespace/pod never win.
        #expect(result.families[0].samples.map { $0.labels.map(\.value) } == [["ml", "p", "0"], ["ml", "p", "1"]])

        let roomy = WorkloadMetrics.extract(scraped, names: ["done_total", "accelerator_up", "inference_x", "gone"], namespace: "ml", pod: "p", limits: .init())
        #expect(roomy.dropped == ["accelerator_up": .reservedName, "inference_x": .reservedName, "gone": .notFound])
        #expect(roomy.families.map(\.name) == ["done"])
        #expect(roomy.families[0].kind == .counter)
    }
}
