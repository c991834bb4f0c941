// Every second: the node's values recorded into one swift-metrics instrument per series (gauges record the value,
// counters increment by the change), which swift-otel's metrics backend exports every second over OTLP/HTTP.
// --idle: the same ticks, no backend, no instruments.
import Exposition
import Metrics
import OTel
import ProbeSupport
import ServiceLifecycle

let options = ProbeOptions.parse()
let node = Node.load(options.fixture)
print("swift-otel probe: \(Node.series(node)) series, \(options.idle ? "idle" : "pushing to \(options.endpoint)")")

enum Instrument {
    case gauge(Gauge)
    case counter(FloatingPointCounter)
}

if options.idle {
    var t = 0
    var retained: [MetricFamily] = []
    while true {
        t += 1
        retained = Node.tick(node, t)
        precondition(!retained.isEmpty)
        try await Task.sleep(for: .seconds(1))
    }
}

var configuration = OTel.Configuration.default
configuration.serviceName = "otlp-choice"
configuration.resourceAttributes = ["k8s.node.name": "test-node", "host.name": "test-node"]
configuration.traces.enabled = false
configuration.logs.enabled = false
configuration.diagnosticLogLevel = .warning
configuration.metrics.exportInterval = .seconds(1)
configuration.metrics.otlpExporter.protocol = .httpProtobuf
// Set explicitly, the endpoint is used as written: the signal path is spelled out.
configuration.metrics.otlpExporter.endpoint = options.endpoint + "/v1/metrics"
let observability = try OTel.bootstrap(configuration: configuration)

// One instrument per series, made once (swift-metrics' factory would hand back the same one for the same label and
// dimensions, at a lookup's cost per tick).
var instruments: [Instrument] = []
var last: [Double] = []
for family in node {
    for sample in family.samples {
        let label = family.name + sample.suffix
        let dimensions = sample.labels.map { ($0.name, $0.value) }
        instruments.append(family.kind == .counter
            ? .counter(FloatingPointCounter(label: label, dimensions: dimensions))
            : .gauge(Gauge(label: label, dimensions: dimensions)))
        last.append(0)
    }
}

let running = Task { try await observability.run() }
var t = 0
while true {
    t += 1
    var i = 0
    for family in Node.tick(node, t) {
        for sample in family.samples {
            switch instruments[i] {
            case .gauge(let gauge): gauge.record(sample.value)
            case .counter(let counter): counter.increment(by: max(0, sample.value - last[i]))
            }
            last[i] = sample.value
            i += 1
        }
    }
    try await Task.sleep(for: .seconds(1))
}
