import Exposition
import MetricSchema
import OTLPExport
import OTLPProto
import SwiftProtobuf
import Testing

/// The mapping onto the semantic conventions, read back through the generated messages (the end-to-end tests read
/// the same bytes with Python's opentelemetry-proto).
@Suite struct MetricsRequestBuilderTests {
    static let gpu = [Label("accelerator", "GPU-1"), Label("vendor", "nvidia"), Label("model", "H100"), Label("pci_bus_id", "0000:05:00.0")]
    static let mig = [Label("accelerator", "MIG-1"), Label("vendor", "nvidia"), Label("model", "H100"), Label("pci_bus_id", "0000:05:00.0")]

    static func families() -> [MetricFamily] {
        typealias D = Families.Device
        return [
            D.info.family([
                Sample(labels: gpu + [Label("driver", "550.54"), Label("serial", "1650"), Label("vbios", "96.00")], value: 1),
                Sample(labels: mig + [Label("parent", "GPU-1")], value: 1),
            ]),
            D.up.family([Sample(labels: gpu, value: 1), Sample(labels: mig, value: 0)]),
            D.utilization.family([Sample(labels: gpu, value: 0.82), Sample(labels: mig, value: 0.5)]),
            D.engineUtilization.family([
                Sample(labels: gpu + [Label("engine", "video_decode")], value: 0.25),
                Sample(labels: gpu + [Label("engine", "gfx")], value: 0.75),
            ]),
            D.memoryUsed.family([Sample(labels: gpu + [Label("memory", "vram")], value: 20e9), Sample(labels: gpu + [Label("memory", "gtt")], value: 1e6)]),
            D.memoryTotal.family([Sample(labels: gpu + [Label("memory", "vram")], value: 80e9)]),
            D.temperature.family([Sample(labels: gpu + [Label("sensor", "gpu")], value: 61)]),
            D.energy.family([Sample(labels: gpu, value: 1000)]),
            D.interconnect.family([Sample(labels: gpu + [Label("link", "0"), Label("direction", "rx")], value: 4096)]),
            D.errors.family([Sample(labels: gpu + [Label("type", "ecc_corrected")], value: 3)]),
            D.smActive.family([Sample(labels: gpu, value: 0.4)]),
            Families.Inference.requestDuration.family([
                Sample(suffix: "_bucket", labels: [Label("namespace", "ml"), Label("pod", "vllm-0"), Label("model_name", "llama"), Label("le", "0.5")], value: 2),
                Sample(suffix: "_bucket", labels: [Label("namespace", "ml"), Label("pod", "vllm-0"), Label("model_name", "llama"), Label("le", "1")], value: 5),
                Sample(suffix: "_bucket", labels: [Label("namespace", "ml"), Label("pod", "vllm-0"), Label("model_name", "llama"), Label("le", "+Inf")], value: 6),
                Sample(suffix: "_sum", labels: [Label("namespace", "ml"), Label("pod", "vllm-0"), Label("model_name", "llama")], value: 4.5),
                Sample(suffix: "_count", labels: [Label("namespace", "ml"), Label("pod", "vllm-0"), Label("model_name", "llama")], value: 6),
            ]),
            Families.Pod.labels.family([Sample(labels: [Label("namespace", "ml"), Label("pod", "vllm-0"), Label("label_app", "vllm")], value: 1)]),
            Families.Process.cpu.family([Sample(labels: [], value: 1)]),
        ]
    }

    static func metrics(_ request: Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceRequest) -> [String: Opentelemetry_Proto_Metrics_V1_Metric] {
        Dictionary(request.resourceMetrics[0].scopeMetrics[0].metrics.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func attributes(_ kvs: [Opentelemetry_Proto_Common_V1_KeyValue]) -> [String: String] {
        Dictionary(kvs.map { ($0.key, $0.value.stringValue) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func namesUnitsAndInstrumentsFollowTheConventions() throws {
        var builder = MetricsRequestBuilder(resource: [("service.name", "accel-exporter"), ("k8s.node.name", "n1")], scopeVersion: "9.9")
        let bytes: [UInt8] = try builder.build(Self.families(), timeUnixNano: 1_000).serializedBytes()
        let request = try Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceRequest(serializedBytes: bytes)
        #expect(Self.attributes(request.resourceMetrics[0].resource.attributes) == ["service.name": "accel-exporter", "k8s.node.name": "n1"])
        #expect(request.resourceMetrics[0].scopeMetrics[0].scope.name == "accel-exporter")
        let m = Self.metrics(request)

        let util = try #require(m["hw.gpu.utilization"])
        #expect(util.unit == "1")
        guard case .gauge(let gauge)? = util.data else { Issue.record("hw.gpu.utilization is not a gauge"); return }
        let points = gauge.dataPoints.map { (Self.attributes($0.attributes), $0.asDouble) }
        #expect(points.count == 3)
        let general = try #require(points.first { $0.0["hw.id"] == "GPU-1" && $0.0["hw.gpu.task"] == "general" })
        #expect(general.1 == 0.82)
        #expect(general.0["hw.vendor"] == "nvidia" && general.0["hw.model"] == "H100" && general.0["hw.type"] == "gpu")
        #expect(general.0["pci_bus_id"] == "0000:05:00.0")
        #expect(points.contains { $0.0["hw.gpu.task"] == "decoder" && $0.1 == 0.25 && $0.0["engine"] == nil })
        let slice = try #require(points.first { $0.0["hw.id"] == "MIG-1" })
        #expect(slice.0["hw.parent"] == "GPU-1")
        // Engines the conventions do not name stay ours.
        let engine = try #require(m["accelerator.engine_utilization"])
        #expect(engine.gauge.dataPoints.map { Self.attributes($0.attributes)["engine"] } == ["gfx"])

        let usage = try #require(m["hw.gpu.memory.usage"])
        #expect(usage.unit == "By")
        guard case .sum(let sum)? = usage.data else { Issue.record("hw.gpu.memory.usage is not a sum"); return }
        #expect(!sum.isMonotonic && sum.aggregationTemporality == .cumulative)
        #expect(sum.dataPoints.map(\.asDouble) == [20e9])
        #expect(sum.dataPoints[0].startTimeUnixNano == 1_000)
        #expect(m["accelerator.memory_used"]?.sum.dataPoints.isEmpty == nil || m["accelerator.memory_used"]?.gauge.dataPoints.map(\.asDouble) == [1e6])
        #expect(m["hw.gpu.memory.limit"]?.sum.dataPoints.map(\.asDouble) == [80e9])
        #expect(m["hw.gpu.memory.utilization"]?.gauge.dataPoints.map(\.asDouble) == [0.25])

        let temperature = try #require(m["hw.temperature"])
        #expect(temperature.unit == "Cel")
        #expect(Self.attributes(temperature.gauge.dataPoints[0].attributes)["hw.sensor_location"] == "gpu")
        let energy = try #require(m["hw.energy"])
        #expect(energy.unit == "J" && energy.sum.isMonotonic && energy.sum.aggregationTemporality == .cumulative)
        let io = try #require(m["hw.gpu.io"])
        #expect(io.unit == "By" && io.sum.isMonotonic)
        #expect(Self.attributes(io.sum.dataPoints[0].attributes)["network.io.direction"] == "receive")
        let errors = try #require(m["hw.errors"])
        #expect(Self.attributes(errors.sum.dataPoints[0].attributes)["error.type"] == "ecc_corrected")
        #expect(errors.sum.dataPoints[0].asDouble == 3)

        let status = try #require(m["hw.status"])
        #expect(!status.sum.isMonotonic)
        let states = status.sum.dataPoints.map { (Self.attributes($0.attributes), $0.asDouble) }
        #expect(states.contains { $0.0["hw.id"] == "GPU-1" && $0.0["hw.state"] == "ok" && $0.1 == 1 })
        #expect(states.contains { $0.0["hw.id"] == "MIG-1" && $0.0["hw.state"] == "failed" && $0.1 == 1 })
        let full = try #require(states.first { $0.0["hw.id"] == "GPU-1" }?.0)
        #expect(full["hw.serial_number"] == "1650" && full["hw.firmware_version"] == "96.00" && full["hw.driver_version"] == "550.54")

        #expect(m["accelerator.sm_active"]?.unit == "1")
        #expect(m["accelerator.sm_active"]?.gauge.dataPoints.map(\.asDouble) == [0.4])
        #expect(Self.attributes(m["accelerator.pod_labels"]?.gauge.dataPoints.first?.attributes ?? [])["k8s.pod.label.app"] == "vllm")
        // Info families become attributes, process_* stays with the process collectors.
        #expect(m.keys.allSatisfy { !$0.hasPrefix("process") && $0 != "accelerator" && $0 != "accelerator.info" })
    }

    @Test func histogramsBecomePerBucketCounts() throws {
        var builder = MetricsRequestBuilder(resource: [], scopeVersion: "1")
        let m = Self.metrics(builder.build(Self.families(), timeUnixNano: 5))
        let duration = try #require(m["gen_ai.server.request.duration"])
        #expect(duration.unit == "s")
        guard case .histogram(let histogram)? = duration.data else { Issue.record("not a histogram"); return }
        #expect(histogram.aggregationTemporality == .cumulative)
        let point = try #require(histogram.dataPoints.first)
        #expect(point.explicitBounds == [0.5, 1])
        #expect(point.bucketCounts == [2, 3, 1])
        #expect(point.count == 6 && point.sum == 4.5)
        let attributes = Self.attributes(point.attributes)
        #expect(attributes == ["k8s.namespace.name": "ml", "k8s.pod.name": "vllm-0", "gen_ai.request.model": "llama"])
    }

    @Test func startTimesHoldUntilACounterGoesDown() throws {
        var builder = MetricsRequestBuilder(resource: [], scopeVersion: "1")
        func energyStart(_ value: Double, at time: UInt64) throws -> UInt64 {
            let family = Families.Device.energy.family([Sample(labels: Self.gpu, value: value)])
            return try #require(Self.metrics(builder.build([family], timeUnixNano: time))["hw.energy"]).sum.dataPoints[0].startTimeUnixNano
        }
        #expect(try energyStart(100, at: 10) == 10)
        #expect(try energyStart(150, at: 20) == 10)
        // The driver reloaded: the count starts again.
        #expect(try energyStart(5, at: 30) == 30)
        #expect(try energyStart(9, at: 40) == 30)
        #expect(builder.trackedSeries == 1)
        _ = builder.build([], timeUnixNano: 50)
        #expect(builder.trackedSeries == 0)
    }

    @Test func ownNamesDropTheUnitAndKeepTheNamespace() {
        #expect(SemanticConventions.ownName("accelerator_sm_active_ratio", unit: "ratio") == "accelerator.sm_active")
        #expect(SemanticConventions.ownName("accel_exporter_otlp_exports", unit: nil) == "accel_exporter.otlp_exports")
        #expect(SemanticConventions.ownName("inference_requests_running", unit: nil) == "inference.requests_running")
        #expect(SemanticConventions.ownName("hwmon_temperature_celsius", unit: "celsius") == "hwmon.temperature")
        #expect(SemanticConventions.ownName("app_queue_depth", unit: nil) == "app_queue_depth")
        #expect(SemanticConventions.unit("bytes_per_second", family: "x") == "By/s")
        #expect(SemanticConventions.unit(nil, family: "inference_generated_tokens") == "{token}")
    }

    @Test func nonFiniteValuesAreLeftOut() throws {
        var builder = MetricsRequestBuilder(resource: [], scopeVersion: "1")
        let family = Families.Device.power.family([Sample(labels: Self.gpu, value: .nan), Sample(labels: Self.mig, value: 300)])
        let m = Self.metrics(builder.build([family], timeUnixNano: 1))
        #expect(m["hw.power"]?.gauge.dataPoints.map(\.asDouble) == [300])
    }
}
