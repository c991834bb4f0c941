import Accelerators
import Exposition
import LandingPage
import MetricSchema

extension LandingPage {
    /// The page for this exporter's latest snapshot.
    static func render(snapshot: Snapshot?, configuration: Exporter.Configuration, history: ReadingHistory? = nil) -> String {
        let page = Page(
            version: SelfMetrics.version, telemetryPath: configuration.telemetryPath, sampleInterval: configuration.interval,
            adapterURL: configuration.adapterURL, nodeName: configuration.nodeName, devices: snapshot?.tick.devices,
            collectors: snapshot?.tick.collectors.map {
                Page.Collector(name: $0.name, success: $0.success, durationSeconds: $0.durationSeconds, error: $0.error)
            } ?? [],
            podNamespaces: snapshot.map { podNamespaces($0.tick) } ?? [])
        return render(page, history: history)
    }

    /// The namespaces of the pods holding this node's accelerators in `tick`, sorted.
    static func podNamespaces(_ tick: Sampler.Tick) -> [String] {
        var namespaces = Set<String>()
        for family in tick.extraFamilies where family.name == Families.Pod.allocated.name {
            for sample in family.samples {
                for label in sample.labels where label.name == SchemaLabel.namespace { namespaces.insert(label.value) }
            }
        }
        return namespaces.sorted()
    }
}

extension Exporter.Configuration {
    /// `--web.adapter-url` as the landing page uses it: an `http://` or `https://` URL with a host, trailing slashes
    /// dropped; nil when it is not one.
    public static func normalizedAdapterURL(_ text: String) -> String? {
        var url = Substring(text)
        while url.hasSuffix("/") { url = url.dropLast() }
        for scheme in ["http://", "https://"] where url.hasPrefix(scheme) {
            let rest = url.dropFirst(scheme.count)
            let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !host.isEmpty, !rest.contains("?"), !rest.contains("#"), !url.contains(where: \.isWhitespace) else { return nil }
            return String(url)
        }
        return nil
    }
}
