import AccelMetricsTesting
import Accelerators
import ArgumentParser
import CurlHTTP
import Exporter
import ExporterApp
import Lifecycle
import Logging
import OTLPExport
import Testing

/// Flags → configuration and the collector registry, in process: what the executable does before it serves.
@Suite struct ExporterFlagsTests {
    static func configuration(_ arguments: [String], environment: [String: String] = [:]) throws -> Exporter.Configuration {
        try ExporterFlags.parse(arguments + ["--no-collector.kubelet", "--no-kubernetes.watch-pods"]).configuration(environment: environment).0
    }

    static func sources(_ configuration: Exporter.Configuration) -> [any AcceleratorSource] {
        let context = CollectorContext(sysfs: FileRoot("/nonexistent-sysfs"), procfs: FileRoot("/nonexistent-procfs"), nodeName: "n",
                                       discoveryInterval: 10, sampleInterval: 1, logger: Logger(label: "test"))
        return configuration.collectors.flatMap { $0.make(context).sources }
    }

    @Test func everyCollectorIsOnByDefaultInRegistryOrder() throws {
        let config = try Self.configuration([])
        #expect(config.collectors.map(\.name) == ["amdgpu", "habana", "intel", "hwmon", "nvidia", "tpu"])
        #expect(Collectors.names == config.collectors.map(\.name))
        let kinds = Self.sources(config).map { "\(type(of: $0))" }
        #expect(kinds == ["AMDGPUSource", "GaudiSource", "IntelGPUSource", "HwmonSource", "NVMLSource", "TPUSource"])
    }

    @Test func aCollectorFlagTurnsItOff() throws {
        let config = try Self.configuration(["--no-collector.amdgpu", "--no-collector.tpu"])
        #expect(config.collectors.map(\.name) == ["habana", "intel", "hwmon", "nvidia"])
    }

    @Test func theTPUCollectorRunsItsRuntimeClientOnlyWithAddresses() throws {
        let context = CollectorContext(sysfs: FileRoot("/nonexistent"), procfs: FileRoot("/nonexistent"), nodeName: nil,
                                       discoveryInterval: 10, sampleInterval: 1, logger: Logger(label: "test"))
        let polled = try #require(try Self.configuration([]).collectors.first { $0.name == "tpu" }).make(context)
        #expect(polled.components.map(\.name) == ["tpu-runtime"] && polled.tickStep != nil)
        let chipsOnly = try #require(try Self.configuration(["--tpu.runtime-metrics-address", ""]).collectors.first { $0.name == "tpu" }).make(context)
        #expect(chipsOnly.components.isEmpty && chipsOnly.tickStep == nil)
    }

    @Test func collectorFlagMistakesNameTheFlag() {
        #expect(throws: (any Error).self) { try Self.configuration(["--amdgpu.pcie-bw-interval", "soon"]) }
        do {
            _ = try Self.configuration(["--tpu.runtime-metrics-address", "no-port"])
            Issue.record("an address without a port was accepted")
        } catch {
            #expect("\(error)".contains("--tpu.runtime-metrics-address"))
        }
    }

    @Test func generalFlagsBecomeTheConfiguration() throws {
        let config = try Self.configuration(["--web.listen-address", "127.0.0.1:9555", "--collect.interval", "500ms",
                                             "--kubernetes.node-name", "gpu-7"])
        #expect(config.listenHost == "127.0.0.1" && config.listenPort == 9555)
        #expect(config.interval == 0.5)
        #expect(config.nodeName == "gpu-7")
        #expect(try Self.configuration([], environment: ["NODE_NAME": "from-env"]).nodeName == "from-env")
    }

    @Test func otlpFlagsAndEnvironment() throws {
        #expect(try Self.configuration([]).otlp == nil)
        let config = try Self.configuration(
            ["--otlp.endpoint", "https://collector:4318", "--otlp.interval", "30s", "--otlp.header", "X-Tenant=a",
             "--otlp.resource-attribute", "k8s.cluster.name=flag"],
            environment: ["OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20t", "OTEL_RESOURCE_ATTRIBUTES": "k8s.cluster.name=env,team=ml"])
        let otlp = try #require(config.otlp)
        #expect(otlp.endpoint == "https://collector:4318" && otlp.intervalSeconds == 30 && otlp.wireProtocol == .httpProtobuf)
        #expect(otlp.headers.map { "\($0.0)=\($0.1)" } == ["X-Tenant=a", "Authorization=Bearer t"])
        #expect(otlp.resourceAttributes.map { "\($0.0)=\($0.1)" } == ["team=ml", "k8s.cluster.name=flag"])
        #expect(throws: (any Error).self) { try Self.configuration(["--otlp.endpoint", "http://c:4318", "--otlp.queue-size", "0"]) }
        #expect(otlp.proxy == .direct)
    }

    /// The OpenTelemetry SDKs' proxy variables reach the push; one that cannot work stops the start with its name.
    @Test func otlpProxyFromTheEnvironment() throws {
        let proxied = try #require(try Self.configuration(
            ["--otlp.endpoint", "https://collector.example:4318"],
            environment: ["HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": ".svc"]).otlp)
        #expect(proxied.proxy.route(for: proxied.endpoint) == "http://proxy.corp:3128")
        #expect(proxied.proxy.route(for: "https://otel.monitoring.svc:4318") == nil)
        #expect {
            try Self.configuration(["--otlp.endpoint", "https://c:4318"], environment: ["HTTPS_PROXY": "ftp://proxy.corp"])
        } throws: { "\($0)".contains("HTTPS_PROXY") }
    }

    @Test func kubeletFlagsWhenThePodResourcesDirectoryExists() throws {
        let directory = TemporaryDirectory(prefix: "accel-kubelet-flags")
        defer { directory.remove() }
        func kubelet(_ arguments: [String]) throws -> Exporter.Configuration.Kubelet? {
            try ExporterFlags.parse(["--kubelet.pod-resources-socket", directory.path("kubelet.sock"), "--no-kubernetes.watch-pods"] + arguments)
                .configuration(environment: [:]).0.kubelet
        }
        let defaults = try #require(try kubelet([]))
        #expect(defaults.refreshInterval == 5 && defaults.staleAfter == nil)
        let set = try #require(try kubelet(["--kubelet.refresh-interval", "2s", "--kubelet.stale-after", "2m"]))
        #expect(set.refreshInterval == 2 && set.staleAfter == 120)
        // Serving a table for less than one refresh would drop it between two good answers.
        #expect(throws: (any Error).self) { try kubelet(["--kubelet.refresh-interval", "10s", "--kubelet.stale-after", "5s"]) }
        #expect(try kubelet(["--no-collector.kubelet"]) == nil)
        #expect(try ExporterFlags.parse(["--kubelet.pod-resources-socket", directory.path("absent/kubelet.sock"), "--no-kubernetes.watch-pods"])
            .configuration(environment: [:]).0.kubelet == nil)
    }
}
