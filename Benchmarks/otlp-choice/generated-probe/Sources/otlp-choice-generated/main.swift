// Every second: the node's values, offered to OTLPPusher (interval 1 s) as the exporter's sampler offers a tick.
// --idle: the same ticks, no pusher.
import Exposition
import Logging
import OTLPExport
import ProbeSupport

let options = ProbeOptions.parse()
let node = Node.load(options.fixture)
var logger = Logger(label: "otlp-choice-generated")
logger.logLevel = .warning
print("generated probe: \(Node.series(node)) series, \(options.idle ? "idle" : "pushing to \(options.endpoint)")")

var pusher: OTLPPusher?
if !options.idle {
    var configuration = OTLPConfiguration(endpoint: options.endpoint)
    configuration.intervalSeconds = 1
    configuration.gzip = options.gzip
    do {
        pusher = try OTLPPusher(configuration: configuration, resource: [("k8s.node.name", "test-node"), ("host.name", "test-node")],
                                version: "probe", logger: logger)
    } catch {
        Node.fail("\(error)")
    }
    pusher?.start()
}

var t = 0
var retained: [MetricFamily] = []
while true {
    t += 1
    let families = Node.tick(node, t)
    if let pusher { pusher.offer(families, timeUnixSeconds: Node.now()) } else { retained = families; precondition(!retained.isEmpty) }
    try await Task.sleep(for: .seconds(1))
}
