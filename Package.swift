// swift-tools-version:6.1
import PackageDescription

/// Products many targets name, spelled once.
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let swiftProtobufProduct: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")

/// What the generated gRPC service code (PodResourcesGRPC, TPURuntimeGRPC: the test fakes' servers) needs beside its
/// messages. The exporter links none of it: its clients call through UnaryGRPC.
let generatedGRPCService: [Target.Dependency] = [
    .product(name: "GRPCCore", package: "grpc-swift-2"),
    .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
    swiftProtobufProduct,
]

/// What a gRPC client of the exporter's (the kubelet's, libtpu's) needs beside its generated messages.
let grpcClient: [Target.Dependency] = [
    "UnaryGRPC",
    swiftProtobufProduct,
    logging,
]

let swiftProtobuf: [Target.Dependency] = [swiftProtobufProduct]

/// What a test target that serves the gRPC fakes (kubelet, libtpu) needs: the fakes and the types they answer with.
let grpcFakes: [Target.Dependency] = [
    "FakeRPCServers",
    .product(name: "GRPCCore", package: "grpc-swift-2"),
    swiftProtobufProduct,
]

let package = Package(
    name: "AccelMetrics",
    products: [
        .executable(name: "accel-exporter", targets: ["accel-exporter"]),
        .executable(name: "accel-simulator", targets: ["accel-simulator"]),
        .executable(name: "accel-metrics-adapter", targets: ["accel-metrics-adapter"]),
        .library(name: "Exposition", targets: ["Exposition"]),
        // The OTLP push, for Benchmarks/otlp-choice's probe (the exporter links the target).
        .library(name: "OTLPExport", targets: ["OTLPExport"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "Accelerators", targets: ["Accelerators"]),
        .library(name: "Exporter", targets: ["Exporter"]),
        .library(name: "CustomMetricsAPI", targets: ["CustomMetricsAPI"]),
        .library(name: "AdapterStore", targets: ["AdapterStore"]),
        .library(name: "AdapterSources", targets: ["AdapterSources"]),
        .library(name: "AggregatedAPI", targets: ["AggregatedAPI"]),
        .library(name: "Attribution", targets: ["Attribution"]),
        .library(name: "Kubernetes", targets: ["Kubernetes"]),
        // Simulated devices: fixture nodes as umockdev trees, gpu_metrics blobs, fleets; the simulator, tests,
        // benchmarks and the demo build on it.
        .library(name: "DeviceSimulation", targets: ["DeviceSimulation"]),
        // Test infrastructure every test target shares: product locator, managed processes, temporary directories,
        // ports and misbehaving sockets, the fake API server, golden files, deadline polls, tags. Never shipped.
        .library(name: "AccelMetricsTesting", targets: ["AccelMetricsTesting"]),
        // In-process kubelet pod-resources and libtpu runtime-metrics servers (gRPC), for the clients' tests and the
        // exporter's end-to-end tests.
        .library(name: "FakeRPCServers", targets: ["FakeRPCServers"]),
        // A fake libnvidia-ml (and an old driver's variant) that tests and benchmarks dlopen instead of NVML.
        .library(name: "FakeNVML", type: .dynamic, targets: ["FakeNVML"]),
        .library(name: "FakeNVMLOld", type: .dynamic, targets: ["FakeNVMLOld"]),
        // The habanalabs INFO ioctl answered at the syscall boundary (preloaded before umockdev's), for Gaudi nodes.
        .library(name: "FakeHabanaIoctl", type: .dynamic, targets: ["FakeHabanaIoctl"]),
        // Every parser that takes outside bytes, one entry per input: Fuzz/ links it under libFuzzer, the tests
        // replay Fuzz/Corpus through it.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // The kubelet pod-resources client (gRPC over a unix socket). Generated code is committed
        // (scripts/generate-podresources.sh): builds need neither protoc nor the plugins.
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        // The programs' lifecycle: ordered start, SIGTERM/SIGINT, ordered graceful shutdown with a deadline.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // C bridges. libmicrohttpd ships a .pc file; libsensors does not (link "sensors" in its modulemap).
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .systemLibrary(name: "CSensors", providers: [.apt(["libsensors-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // libxcrypt's crypt_r, for bcrypt basic-auth hashes.
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        // GnuTLS, which Debian's libmicrohttpd already uses: client-certificate chains and credential checks.
        .systemLibrary(name: "CGnuTLS", pkgConfig: "gnutls", providers: [.apt(["libgnutls28-dev"])]),
        // libcurl (Debian's GnuTLS build, libcurl4-gnutls-dev): its variadic setopt/getinfo in typed form, and
        // memory files for PEM bytes. The exporter's only HTTP client library: API server, kubelet, libtpu, OTLP.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        // NVML's declarations and a dlopen/dlsym loader; the binary never links libnvidia-ml.
        .target(name: "CNVML"),
        // The habanalabs INFO ioctl (a macro request on a variadic call): one C function the Gaudi source calls.
        .target(name: "CHabanaLabs"),
        // Fake NVML for tests: NVML's C entry points answering from a description file ($FAKE_NVML_CONFIG).
        .target(name: "FakeNVML", path: "Sources/FakeNVML"),
        .target(name: "FakeNVMLOld", path: "Sources/FakeNVMLOld"),
        .target(name: "FakeHabanaIoctl", path: "Sources/FakeHabanaIoctl"),

        .target(name: "Exposition", dependencies: ["CZlib"]),
        // Every family the exporter writes: name, type, help, unit, labels. The exporter, the adapter, the simulator
        // and (through dashboards/metric-schema.json) the dashboards read names from here and nowhere else.
        .target(name: "MetricSchema", dependencies: ["Exposition"]),
        // YAML (libyaml) into a small value tree, for configuration files and kubeconfig.
        .target(name: "ConfigYAML", dependencies: ["CYAML"]),
        // Model servers: their scrape loop, discovery by annotation, and their metrics (vLLM, SGLang, TGI, Triton) in
        // the inference schema, with windowed percentiles.
        .target(
            name: "Inference",
            dependencies: ["Accelerators", "Exposition", "MetricSchema", "ScrapeClient", logging]
        ),
        // A small blocking HTTP/1.1 GET for scraping model servers from the exporter (no event loop, no TLS).
        .target(name: "ScrapeClient"),
        // HTTP exchanges through libcurl with GnuTLS (the TLS library libmicrohttpd already brings): deadlines, bounded
        // bodies, streams, TLS from files or PEM bytes. One TLS stack in the exporter.
        .target(name: "CurlHTTP", dependencies: ["CCurl", "CGnuTLS"]),
        // Unary gRPC calls over HTTP/2 on CurlHTTP: the kubelet's pod-resources, libtpu's runtime metrics, OTLP/gRPC.
        .target(name: "UnaryGRPC", dependencies: ["ConfigYAML", "CurlHTTP"] + swiftProtobuf),
        // logfmt/JSON line log handlers shared by both executables.
        .target(name: "LineLogging", dependencies: [logging]),
        // Flag spellings, environment, log bootstrap and the one-line failure both executables share.
        .target(
            name: "CommandLineSupport",
            dependencies: ["LineLogging", argumentParser, logging]
        ),
        // Components started in order and stopped in reverse on SIGTERM/SIGINT, under a ServiceGroup.
        .target(
            name: "Lifecycle",
            dependencies: [
                logging,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "HTTPServer",
            dependencies: ["CMicroHTTPD", "CGnuTLS", logging]
        ),
        // Who may read an HTTP server: exporter-toolkit's web configuration (TLS, client certificates, headers, basic
        // auth with bcrypt) and the guard that bounds bcrypt runs and throttles failing addresses.
        .target(name: "HTTPAccess", dependencies: ["CCrypt", "ConfigYAML", "HTTPServer"]),
        // The exporter's `/` page: the node's accelerators, their readings and the last minutes of them as SVG charts.
        .target(name: "LandingPage", dependencies: ["Accelerators", "MetricSchema"]),
        .target(
            name: "Accelerators",
            dependencies: ["CHabanaLabs", "CNVML", "CSensors", "Exposition", "MetricSchema", logging]
        ),
        .target(
            name: "Exporter",
            dependencies: [
                "Accelerators", "Attribution", "ConfigYAML", "Exposition", "HTTPAccess", "HTTPServer", "Inference", "KubeletClient", "LandingPage", "MetricSchema",
                "Kubernetes", "Lifecycle", "OTLPExport", "ScrapeClient", "TPURuntimeClient",
                logging,
            ]
        ),
        // Generated from Protos/podresources/v1/api.proto by scripts/generate-podresources.sh: the messages, and (for the
        // fake kubelet) the service's server side.
        .target(name: "PodResourcesAPI", dependencies: swiftProtobuf),
        .target(name: "PodResourcesGRPC", dependencies: ["PodResourcesAPI"] + generatedGRPCService),
        // The kubelet pod-resources client: List on its own interval, GetAllocatableResources per connection,
        // answers converted to Attribution's values. Never on the scrape or sample path.
        .target(
            name: "KubeletClient",
            dependencies: ["Attribution", "PodResourcesAPI"] + grpcClient
        ),
        // Generated from Protos/tpu/runtime_metric_service.proto by scripts/generate-tpu-runtime.sh: the messages, and
        // (for the fake libtpu) the service's server side.
        .target(name: "TPURuntimeAPI", dependencies: swiftProtobuf),
        .target(name: "TPURuntimeGRPC", dependencies: ["TPURuntimeAPI"] + generatedGRPCService),
        // Generated from Protos/opentelemetry/*.proto by scripts/generate-otlp.sh: OTLP's metrics messages, cut to what
        // the exporter sends.
        .target(name: "OTLPProto", dependencies: swiftProtobuf),
        // The OTLP push: a tick's families named by the OpenTelemetry semantic conventions, queued, and sent over
        // OTLP/HTTP (plain HTTP through ScrapeClient, https through CurlHTTP) or OTLP/gRPC (UnaryGRPC).
        .target(
            name: "OTLPExport",
            dependencies: [
                "ConfigYAML", "CurlHTTP", "Exposition", "MetricSchema", "OTLPProto", "ScrapeClient", "UnaryGRPC",
                logging,
            ] + swiftProtobuf
        ),
        // libtpu's runtime-metrics client: one refresh loop per workload address, answers checked and converted to the
        // TPU source's values. Never on the scrape or sample path.
        .target(
            name: "TPURuntimeClient",
            dependencies: ["Accelerators", "TPURuntimeAPI"] + grpcClient
        ),
        // Simulated accelerator nodes (sysfs trees, gpu_metrics blobs, fleet schedules): what accel-simulator serves and
        // what the tests, benchmarks and `make run` use as devices.
        .target(name: "DeviceSimulation", dependencies: ["Accelerators"]),
        .target(name: "AccelMetricsTesting", dependencies: [logging]),
        .target(
            name: "FakeRPCServers",
            dependencies: [
                "AccelMetricsTesting", "KubeletClient", "PodResourcesAPI", "PodResourcesGRPC", "TPURuntimeAPI", "TPURuntimeGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                swiftProtobufProduct,
            ]
        ),
        .target(
            name: "FuzzTargets",
            dependencies: [
                "Accelerators", "AdapterSources", "AdapterStore", "AggregatedAPI", "ConfigYAML", "CustomMetricsAPI", "Exporter", "Exposition", "HTTPAccess", "HTTPServer", "Inference",
                "Kubernetes", "ScrapeClient", "TPURuntimeAPI", "TPURuntimeClient",
                swiftProtobufProduct,
            ]
        ),
        // Devices to workloads: pod-resources allocations (device plugins, DRA), /proc cgroups, DRM fdinfo. No I/O
        // but files under the procfs root; the kubelet client and the pod watch only fill its input values.
        .target(name: "Attribution", dependencies: ["Accelerators", "Exposition", "MetricSchema"]),
        // The metrics adapter's vocabulary: quantities, label selectors, API documents, routing. Pure Swift.
        .target(name: "CustomMetricsAPI"),
        // A small Kubernetes API client on CurlHTTP: in-cluster config and kubeconfig, get/list/watch/create/patch,
        // informers.
        .target(
            name: "Kubernetes",
            dependencies: ["ConfigYAML", "CurlHTTP", logging]
        ),
        // The metrics adapter's store and evaluation: metric definitions and configuration, the exporters' latest
        // series per target, rates and aggregations, the answers to custom and external metrics questions.
        .target(
            name: "AdapterStore",
            dependencies: ["ConfigYAML", "CustomMetricsAPI", "Exposition", "MetricSchema", logging]
        ),
        // Where the adapter's values and pod labels come from: the exporters (scraped directly, followed through
        // their EndpointSlices), or Prometheus; the pods' labels from the API server.
        .target(
            name: "AdapterSources",
            dependencies: [
                "AdapterStore", "ConfigYAML", "CurlHTTP", "CustomMetricsAPI", "Exposition", "Kubernetes", "MetricSchema",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                logging,
            ]
        ),
        // Serving custom.metrics.k8s.io and external.metrics.k8s.io as an aggregated API server: routing and
        // documents, authentication (client certificates, the front proxy, TokenReview), authorization
        // (SubjectAccessReview), the serving certificate's bootstrap and the cluster's authentication settings.
        .target(
            name: "AggregatedAPI",
            dependencies: [
                "AdapterStore", "ConfigYAML", "CustomMetricsAPI", "Exposition", "HTTPServer", "Kubernetes",
                logging,
            ]
        ),
        // accel-metrics-adapter's flags and composition root: flags → store, source, API, servers, run until SIGTERM.
        .target(
            name: "AdapterApp",
            dependencies: [
                "AdapterSources", "AdapterStore", "AggregatedAPI", "CommandLineSupport", "ConfigYAML", "CurlHTTP", "HTTPServer", "Kubernetes", "Lifecycle",
                "LineLogging",
                argumentParser,
                logging,
            ]
        ),
        .executableTarget(
            name: "accel-metrics-adapter",
            dependencies: ["AdapterApp", "AdapterStore", "CommandLineSupport", argumentParser]
        ),
        // accel-exporter's flags and composition root: flags → configuration → components, run until SIGTERM.
        .target(
            name: "ExporterApp",
            dependencies: [
                "Accelerators", "CommandLineSupport", "ConfigYAML", "Exporter", "HTTPServer", "Inference", "Kubernetes", "Lifecycle", "LineLogging",
                "OTLPExport", "TPURuntimeClient",
                argumentParser,
                logging,
            ]
        ),
        .executableTarget(
            name: "accel-exporter",
            dependencies: ["Exporter", "ExporterApp", argumentParser],
            // scripts/build-release.sh links the steady-state code first and together (docs/performance.md).
            exclude: ["hot-text.order"]
        ),
        .executableTarget(
            name: "accel-simulator",
            dependencies: ["DeviceSimulation", "Exposition", "HTTPServer", "MetricSchema", logging, argumentParser]
        ),

        .testTarget(name: "ExpositionTests", dependencies: ["AccelMetricsTesting", "Exposition"]),
        .testTarget(name: "MetricSchemaTests", dependencies: ["AccelMetricsTesting", "MetricSchema", "Exposition"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["AccelMetricsTesting", "HTTPServer"]),
        .testTarget(
            name: "ScrapeClientTests",
            dependencies: ["AccelMetricsTesting", "ScrapeClient", "HTTPServer", logging]
        ),
        .testTarget(name: "CustomMetricsAPITests", dependencies: ["AccelMetricsTesting", "CustomMetricsAPI"]),
        .testTarget(name: "InferenceTests", dependencies: ["AccelMetricsTesting", "Inference", "Exposition"]),
        .testTarget(
            name: "ExporterAppTests",
            dependencies: [
                "AccelMetricsTesting", "Accelerators", "CurlHTTP", "Exporter", "ExporterApp", "Lifecycle", "OTLPExport",
                argumentParser,
                logging,
            ]
        ),
        .testTarget(
            name: "AdapterAppTests",
            dependencies: ["AdapterApp", "AdapterSources", "CurlHTTP", "LineLogging", argumentParser, logging]
        ),
        .testTarget(
            name: "OTLPExportTests",
            dependencies: [
                "AccelMetricsTesting", "OTLPExport", "OTLPProto", "Exposition", "MetricSchema",
                swiftProtobufProduct,
                logging,
            ]
        ),
        .testTarget(name: "LandingPageTests", dependencies: ["Accelerators", "LandingPage"]),
        .testTarget(name: "HTTPAccessTests", dependencies: ["ConfigYAML", "HTTPAccess"]),
        .testTarget(name: "LineLoggingTests", dependencies: ["LineLogging"]),
        .testTarget(name: "LifecycleTests", dependencies: ["Lifecycle"]),
        .testTarget(name: "CurlHTTPTests", dependencies: ["AccelMetricsTesting", "CCurl", "CurlHTTP"]),
        .testTarget(name: "UnaryGRPCTests", dependencies: ["AccelMetricsTesting", "CurlHTTP", "UnaryGRPC"]),
        .testTarget(
            name: "KubernetesTests", dependencies: ["AccelMetricsTesting", "CurlHTTP", "Kubernetes", logging]
        ),
        .testTarget(
            name: "AdapterStoreTests",
            dependencies: ["AccelMetricsTesting", "AdapterStore", "ConfigYAML", "CustomMetricsAPI", "Exposition"]
        ),
        .testTarget(
            name: "AdapterSourcesTests",
            dependencies: [
                "AccelMetricsTesting", "AdapterSources", "AdapterStore", "CurlHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"), logging,
            ]
        ),
        .testTarget(
            name: "AggregatedAPITests",
            dependencies: ["AccelMetricsTesting", "AdapterStore", "AggregatedAPI", "HTTPServer", logging]
        ),
        // The adapter program end to end: the real binary against fake exporters, Prometheus, API servers and kubectl.
        .testTarget(
            name: "AdapterTests",
            dependencies: ["AccelMetricsTesting", "ConfigYAML", "Exposition", "HTTPServer", logging]
        ),
        .testTarget(name: "AcceleratorsTests", dependencies: ["AccelMetricsTesting", "Accelerators", "DeviceSimulation"]),
        .testTarget(name: "DeviceSimulationTests", dependencies: ["AccelMetricsTesting", "DeviceSimulation"]),
        .testTarget(name: "ConfigYAMLTests", dependencies: ["AccelMetricsTesting", "ConfigYAML"]),
        .testTarget(
            name: "CommandLineSupportTests",
            dependencies: ["CommandLineSupport", argumentParser, logging]
        ),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["AccelMetricsTesting", "FuzzTargets"]),
        .testTarget(name: "AttributionTests", dependencies: ["AccelMetricsTesting", "Attribution", "Accelerators", "Exposition", "MetricSchema"]),
        .testTarget(
            name: "KubeletClientTests",
            dependencies: [
                "AccelMetricsTesting", "KubeletClient", "Attribution", "Accelerators", "PodResourcesAPI",
                logging,
            ] + grpcFakes
        ),
        .testTarget(
            name: "TPURuntimeClientTests",
            dependencies: [
                "AccelMetricsTesting", "TPURuntimeClient", "TPURuntimeAPI", "Accelerators",
                logging,
            ] + grpcFakes
        ),
        .testTarget(
            name: "ExporterTests",
            dependencies: [
                "AccelMetricsTesting", "Exporter", "Exposition", "HTTPAccess", "HTTPServer", "DeviceSimulation", "Kubernetes", "LandingPage", "LineLogging", "ScrapeClient", "Attribution", "Inference",
                "MetricSchema",
                "KubeletClient",
                "PodResourcesAPI",
                "TPURuntimeAPI", "TPURuntimeClient",
                logging,
            ] + grpcFakes,
            resources: []
        ),
    ]
)

// One place for the strict settings, as swift-log's manifest does.
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
