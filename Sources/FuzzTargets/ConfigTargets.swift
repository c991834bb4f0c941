import AdapterSources
import AdapterStore
import AggregatedAPI
import ConfigYAML
import CustomMetricsAPI
import Exporter
import HTTPAccess
import Kubernetes

extension FuzzTargets {
    /// The adapter's `--metrics-config` (YAML through libyaml, then the schema), as a reload reads it.
    static let metricsConfig = FuzzTarget("metrics-config", maxLength: 16 << 10) { (raw) throws(FuzzFinding) in
        guard let document = try? YAMLDocument.parse(Array(raw)), let config = try? MetricsConfig(document) else { return }
        for definition in config.definitions {
            if case .series(let spec) = definition.expression { try checkCanonical(spec.selector) }
        }
    }

    /// The exporter's `--web.config.file`. The files it names are never opened: a name reads as its own bytes, or
    /// fails when it contains `missing`.
    static let webConfig = FuzzTarget("web-config", maxLength: 16 << 10) { (raw) throws(FuzzFinding) in
        guard let document = try? YAMLDocument.parse(Array(raw)) else { return }
        _ = try? WebConfig.parse(document, directory: "/etc/accel-exporter") { path in
            path.contains("missing") ? nil : Array(path.utf8)
        }
    }

    /// A kubeconfig (`--kubeconfig`), its current context resolved to a server and credentials; the files it names
    /// are never opened (as for the web configuration). The server is an http(s) URL without a trailing slash.
    static let kubeconfig = FuzzTarget("kubeconfig", maxLength: 16 << 10) { (raw) throws(FuzzFinding) in
        let configuration = try? KubernetesConfiguration.kubeconfig(
            parsing: Array(raw), path: "/home/dev/.kube/config", context: nil, environment: [:]
        ) { (path) throws(KubernetesError) -> [UInt8] in
            guard !path.contains("missing") else { throw KubernetesError(code: .configuration, message: "cannot read \(path)") }
            return Array(path.utf8)
        }
        guard let configuration else { return }
        try check(
            (configuration.server.hasPrefix("https://") || configuration.server.hasPrefix("http://")) && !configuration.server.hasSuffix("/"),
            "the server is \"\(excerpt(configuration.server))\"")
        // What `*-data` decodes to encodes back to base64 that decodes the same.
        var materials = [configuration.certificateAuthorityPEM].compactMap { $0 }
        if case .clientCertificate(let certificate, let key) = configuration.credentials { materials += [certificate, key] }
        for material in materials {
            try check(Base64.decode(Base64.encode(material)) == material, "base64 does not round-trip")
        }
    }
}
