public import Kubernetes
public import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `kube-system/extension-apiserver-authentication`: the front proxy's CA, allowed names and header names, and
/// the cluster's client CA, as the API server publishes them.
public final class AuthenticationConfigWatcher: Sendable {
    /// The ConfigMap's keys, decoded: PEM bundles as their bytes, nil when absent; the header lists fall back to the
    /// API server's defaults when absent or empty; ``allowedNames`` is ``AuthenticationConfigWatcher/noAllowedName``
    /// when the key is present but not a JSON list of strings (empty allows any name).
    public struct Settings: Sendable, Equatable {
        public var requestHeaderCAPEM: [UInt8]?
        public var allowedNames: [String]
        public var usernameHeaders: [String]
        public var groupHeaders: [String]
        public var extraHeaderPrefixes: [String]
        public var clientCAPEM: [UInt8]?
    }

    private let informer: Informer<ConfigMap>

    /// `onChange` gets the decoded settings whenever the informer reports the ConfigMap (nothing while it is absent);
    /// nothing is watched until ``start()``.
    public init(client: KubernetesClient, logger: Logger, onChange: @escaping @Sendable (Settings) -> Void) {
        informer = Informer<ConfigMap>(
            client: client, path: "/api/v1/namespaces/kube-system/configmaps",
            query: ["fieldSelector": "metadata.name=extension-apiserver-authentication"], logger: logger
        ) { maps in
            guard let data = maps.values.first?.data else { return }
            onChange(Self.settings(data))
        }
    }

    /// Starts the watch; returns at once.
    public func start() { informer.start() }
    /// Ends the watch.
    public func stop() async { await informer.stop() }

    /// Allowed names that no certificate has: what an allowed-names entry that cannot be read stands for, so the
    /// front proxy is refused (closed) rather than every name accepted (open).
    public static let noAllowedName = ["\u{0}unreadable requestheader-allowed-names"]

    /// Decodes the ConfigMap's `data`; never fails (see ``Settings``).
    package static func settings(_ data: [String: String]) -> Settings {
        func list(_ key: String, _ fallback: [String]) -> [String] {
            guard let text = data[key], let value = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                return fallback
            }
            return value.isEmpty ? fallback : value
        }
        // Present but not a JSON list of strings: no name is allowed (an absent or empty list allows any).
        var allowedNames = list("requestheader-allowed-names", [])
        if let text = data["requestheader-allowed-names"], (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) == nil {
            allowedNames = noAllowedName
        }
        return Settings(
            requestHeaderCAPEM: data["requestheader-client-ca-file"].map { Array($0.utf8) },
            allowedNames: allowedNames,
            usernameHeaders: list("requestheader-username-headers", ["X-Remote-User"]),
            groupHeaders: list("requestheader-group-headers", ["X-Remote-Group"]),
            extraHeaderPrefixes: list("requestheader-extra-headers-prefix", ["X-Remote-Extra-"]),
            clientCAPEM: data["client-ca-file"].map { Array($0.utf8) })
    }
}
