public import Accelerators
import Exposition
import MetricSchema

/// The `/` page: the node's accelerators, their current readings and the last minutes of them as small charts
/// (server-rendered SVG), refreshed every few seconds, with links.
public enum LandingPage {
    /// What the page shows: the exporter's settings that appear on it, and the latest tick (nil before the first).
    public struct Page: Sendable {
        /// One row of the collectors table: a collector's outcome in the latest tick; `durationSeconds` is shown in ms,
        /// `error` (nil when it succeeded) as text.
        public struct Collector: Sendable {
            public var name: String
            public var success: Bool
            public var durationSeconds: Double
            public var error: String?

            /// Copies a `Sampler` collector outcome; the exporter makes one per collector each time the page is
            /// asked for.
            public init(name: String, success: Bool, durationSeconds: Double, error: String?) {
                self.name = name
                self.success = success
                self.durationSeconds = durationSeconds
                self.error = error
            }
        }

        /// The exporter's version, in the title.
        public var version: String
        /// `--web.telemetry-path`, linked as "Metrics".
        public var telemetryPath: String
        /// Seconds between ticks: with ``ReadingHistory/capacity``, how many minutes the charts span.
        public var sampleInterval: Double
        /// `--web.adapter-url`: links to what an HPA reads there.
        public var adapterURL: String?
        /// The node in the node metric's autoscaling link; nil links every node (`*`).
        public var nodeName: String?
        /// Nil before the first tick.
        public var devices: [DeviceSample]?
        /// In the sampler's order; empty before the first tick.
        public var collectors: [Collector]
        /// The namespaces of the pods holding this node's accelerators, sorted.
        public var podNamespaces: [String]

        /// Memberwise; the exporter fills it from its configuration and its latest snapshot.
        public init(version: String, telemetryPath: String, sampleInterval: Double, adapterURL: String?, nodeName: String?,
                    devices: [DeviceSample]?, collectors: [Collector], podNamespaces: [String]) {
            self.version = version
            self.telemetryPath = telemetryPath
            self.sampleInterval = sampleInterval
            self.adapterURL = adapterURL
            self.nodeName = nodeName
            self.devices = devices
            self.collectors = collectors
            self.podNamespaces = podNamespaces
        }
    }

    /// The whole HTML document, every value escaped. It refreshes itself every 5 seconds; without `history` (or
    /// without devices) there are no charts.
    public static func render(_ page: Page, history: ReadingHistory? = nil) -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
        <title>accel-exporter</title>
        <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}td.l{text-align:left}.down{color:#b00}td.c{padding:.1em .3em}svg{display:block}</style>
        </head><body>
        <h1>accel-exporter \(escape(page.version))</h1>
        <p><a href="\(escape(page.telemetryPath))">Metrics</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></p>

        """
        guard let devices = page.devices else {
            return html + "<p>No sample yet.</p></body></html>\n"
        }
        html += "<h2>Accelerators (\(devices.count))</h2>\n"
        if devices.isEmpty {
            html += "<p>No accelerators found on this node.</p>\n"
        } else {
            // Each reading's column names the family it is exported as (hover for its meaning).
            func header(_ title: String, _ family: FamilyDefinition) -> String {
                "<th title=\"\(escape(family.queryName)): \(escape(family.help))\">\(title)</th>"
            }
            let D = Families.Device.self
            html += "<table><tr><th>Accelerator</th><th>PCI bus id</th><th>Vendor</th><th>Model</th>" + header("State", D.up)
                + header("Utilization", D.utilization) + header("Memory used / total", D.memoryUsed) + header("Hottest", D.temperature)
                + header("Power", D.power) + header("Graphics clock", D.clock) + "</tr>\n"
            for d in devices {
                let mem: String
                if let used = d.memoryUsedBytes["vram"], let total = d.memoryTotalBytes["vram"] {
                    mem = "\(gib(used)) / \(gib(total)) GiB"
                } else { mem = "–" }
                html += "<tr><td class=l>\(escape(d.identity.accelerator))</td><td class=l>\(escape(d.identity.pciAddress ?? "–"))</td>"
                html += "<td class=l>\(escape(d.identity.vendor))</td>"
                html += "<td class=l>\(escape(d.identity.model))</td>"
                html += d.up ? "<td class=l>up</td>" : "<td class='l down'>not answering</td>"
                html += "<td>\(d.utilizationRatio.map { fixed($0 * 100, 1) + " %" } ?? "–")</td><td>\(mem)</td>"
                html += "<td>\(d.temperatureCelsius.values.max().map { fixed($0, 1) + " °C" } ?? "–")</td>"
                html += "<td>\(d.powerWatts.map { fixed($0, 1) + " W" } ?? "–")</td>"
                html += "<td>\(d.clockHertz["graphics"].map { fixed($0 / 1e6, 0) + " MHz" } ?? "–")</td></tr>\n"
            }
            html += "</table>\n"
            if let history {
                html += chartTable(devices, history: history, interval: page.sampleInterval)
            }
        }
        if let adapter = page.adapterURL {
            html += autoscalingLinks(adapter: adapter, node: page.nodeName, namespaces: page.podNamespaces)
        }
        html += "<h2>Collectors</h2>\n<table><tr><th>Collector</th><th>State</th><th>Duration</th><th>Error</th></tr>\n"
        for c in page.collectors {
            html += "<tr><td class=l>\(escape(c.name))</td>"
            html += c.success ? "<td class=l>ok</td>" : "<td class='l down'>failed</td>"
            html += "<td>\(fixed(c.durationSeconds * 1000, 2)) ms</td><td class=l>\(escape(c.error ?? ""))</td></tr>\n"
        }
        html += "</table>\n</body></html>\n"
        return html
    }

    /// What an HPA would read about this node from accel-metrics-adapter (`--web.adapter-url`): `gpu_utilization` of
    /// the node, and of the pods of each namespace that holds one of its accelerators.
    static func autoscalingLinks(adapter: String, node: String?, namespaces: [String]) -> String {
        let base = adapter + "/apis/custom.metrics.k8s.io/v1beta2"
        var html = "<h2>Autoscaling</h2>\n<p>What a HorizontalPodAutoscaler reads from accel-metrics-adapter at "
            + "\(escape(adapter)):</p>\n<ul>\n"
        let nodeName = node.map(pathSegment) ?? "*"
        html += "<li><a href=\"\(escape(base))/nodes/\(escape(nodeName))/gpu_utilization\">gpu_utilization</a> of node "
            + "\(escape(node ?? "*"))</li>\n"
        for namespace in namespaces {
            html += "<li><a href=\"\(escape(base))/namespaces/\(escape(pathSegment(namespace)))/pods/*/gpu_utilization\">"
                + "gpu_utilization</a> of each pod in namespace \(escape(namespace))</li>\n"
        }
        if namespaces.isEmpty {
            html += "<li>No pod holds an accelerator here, so there are no per-pod values (pod attribution: "
                + "--collector.kubelet).</li>\n"
        }
        return html + "</ul>\n"
    }

    /// A name as one URL path segment: unreserved characters kept, everything else percent-encoded.
    static func pathSegment(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out += "%"
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }

    /// One row per accelerator: utilization, memory, power and temperature over the history window.
    static func chartTable(_ devices: [DeviceSample], history: ReadingHistory, interval: Double) -> String {
        let minutes = fixed(Double(history.capacity) * interval / 60, 1)
        var html = "<h2>Last \(minutes) minutes</h2>\n<table id=history><tr><th>Accelerator</th><th>Utilization (0–100 %)</th>"
        html += "<th>Memory used (0–100 %)</th><th>Power (0 to the power limit)</th><th>Hottest sensor (0–100 °C)</th></tr>\n"
        for device in devices {
            let points = history.points(for: device.identity.accelerator)
            let id = escape(device.identity.accelerator)
            html += "<tr><td class=l>\(id)</td>"
            html += "<td class=c>\(Sparkline.svg(points.map(\.utilization), maximum: 1, color: "#1f77b4", label: "\(id) utilization"))</td>"
            html += "<td class=c>\(Sparkline.svg(points.map(\.memory), maximum: 1, color: "#2ca02c", label: "\(id) memory"))</td>"
            html += "<td class=c>\(Sparkline.svg(points.map(\.power), maximum: device.powerLimitWatts, color: "#ff7f0e", label: "\(id) power"))</td>"
            let hottest = points.map(\.temperature).filter(\.isFinite).max() ?? 0
            html += "<td class=c>\(Sparkline.svg(points.map(\.temperature), maximum: max(100, hottest), color: "#d62728", label: "\(id) temperature"))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static func gib(_ bytes: Double) -> String { fixed(bytes / 1_073_741_824, 1) }

    /// Fixed-point formatting without Foundation.
    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "–" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(v) * scale).rounded()
        let whole = Int(rounded / scale)
        let frac = Int(rounded.truncatingRemainder(dividingBy: scale))
        var s = (v < 0 && rounded != 0 ? "-" : "") + String(whole)
        if digits > 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return s
    }
}
