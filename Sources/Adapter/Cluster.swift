import ConfigYAML
import CustomMetricsAPI
public import HTTPServer
public import Kubernetes
public import Logging
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The adapter's dealings with the API server: reviews, pod labels, exporter endpoints, the front proxy's
// settings, and its serving certificate.

/// SubjectAccessReview and TokenReview through the API server.
public struct KubernetesReviewer: AccessReviewer, TokenReviewer {
    public let client: KubernetesClient

    public init(client: KubernetesClient) { self.client = client }

    /// A review's own deadline: the request waiting on it gives up sooner (`APIHandler.guarded`), and this bounds
    /// how long the abandoned call lives on.
    static let reviewTimeoutSeconds = 10.0

    public func review(user: UserInfo, attributes: RequestAttributes) async throws -> (allowed: Bool, reason: String) {
        var spec = SubjectAccessReview.Spec(
            user: user.name, groups: user.groups.isEmpty ? nil : user.groups, extra: user.extra.isEmpty ? nil : user.extra,
            uid: user.uid.isEmpty ? nil : user.uid)
        switch attributes {
        case .resource(let resource):
            spec.resourceAttributes = .init(
                namespace: resource.namespace.isEmpty ? nil : resource.namespace, verb: resource.verb,
                group: resource.group, version: resource.version, resource: resource.resource,
                subresource: resource.subresource.isEmpty ? nil : resource.subresource,
                name: resource.name.isEmpty ? nil : resource.name)
        case .nonResource(let path, let verb):
            spec.nonResourceAttributes = .init(path: path, verb: verb)
        }
        let answer = try await client.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews", SubjectAccessReview(spec: spec), as: SubjectAccessReview.self,
            timeout: Self.reviewTimeoutSeconds)
        let status = answer.status
        return (status?.allowed == true, status?.reason ?? status?.evaluationError ?? "")
    }

    public func review(token: String) async throws -> UserInfo? {
        let answer = try await client.create(
            "/apis/authentication.k8s.io/v1/tokenreviews", TokenReview(token: token), as: TokenReview.self,
            timeout: Self.reviewTimeoutSeconds)
        guard answer.status?.authenticated == true, let user = answer.status?.user, let name = user.username else { return nil }
        return UserInfo(name: name, uid: user.uid ?? "", groups: user.groups ?? [], extra: user.extra ?? [:])
    }
}

/// A ``ClientCertificateVerifier`` over a GnuTLS CA bundle.
public struct CertificateVerifier: ClientCertificateVerifier {
    public let authority: CertificateAuthority

    public init(_ authority: CertificateAuthority) { self.authority = authority }

    public func verify(chain: [[UInt8]]) throws -> VerifiedClient {
        let identity = try authority.verify(chain: chain)
        return VerifiedClient(commonName: identity.commonName, organizations: identity.organizations)
    }
}

/// Every pod's labels, from a cluster-wide pod watch: `labelSelector` for pods and workload selection.
public final class PodDirectory: PodLabelSource {
    private final class Table: Sendable {
        let labels = Mutex<[PodKey: [String: String]]>([:])
    }

    private let informer: Informer<Pod>
    private let table = Table()

    public init(client: KubernetesClient, logger: Logger) {
        let labels = table
        informer = Informer<Pod>(client: client, path: "/api/v1/pods", logger: logger) { pods in
            var table: [PodKey: [String: String]] = [:]
            for pod in pods.values {
                guard let namespace = pod.metadata.namespace, let name = pod.metadata.name else { continue }
                table[PodKey(namespace: namespace, name: name)] = pod.metadata.labels ?? [:]
            }
            labels.labels.withLock { $0 = table }
        }
    }

    public func start() { informer.start() }
    public func stop() async { await informer.stop() }
    public var hasSynced: Bool { informer.hasSynced }

    public func labels(of pod: PodKey) -> [String: String]? { table.labels.withLock { $0[pod] } }
}

/// The exporters behind a Service, from its EndpointSlices: ready endpoints, on the port named `metrics` (or the
/// slice's only port).
public final class EndpointSliceTargets: Sendable {
    private let informer: Informer<EndpointSlice>

    public init(
        client: KubernetesClient, namespace: String, service: String, logger: Logger,
        onChange: @escaping @Sendable ([ExporterTarget]) -> Void
    ) {
        informer = Informer<EndpointSlice>(
            client: client, path: "/apis/discovery.k8s.io/v1/namespaces/\(namespace)/endpointslices",
            query: ["labelSelector": "kubernetes.io/service-name=\(service)"], logger: logger
        ) { slices in
            onChange(Self.targets(Array(slices.values)))
        }
    }

    public func start() { informer.start() }
    public func stop() async { await informer.stop() }

    static func targets(_ slices: [EndpointSlice]) -> [ExporterTarget] {
        var out: [String: ExporterTarget] = [:]
        for slice in slices {
            let ports = slice.ports ?? []
            guard let port = (ports.first { $0.name == "metrics" } ?? (ports.count == 1 ? ports.first : nil))?.port else {
                continue
            }
            for endpoint in slice.endpoints ?? [] where endpoint.conditions?.ready != false {
                for address in endpoint.addresses {
                    let host = address.contains(":") ? "[\(address)]" : address
                    out["\(host):\(port)"] = ExporterTarget(address: "\(host):\(port)", node: endpoint.nodeName)
                }
            }
        }
        return out.values.sorted()
    }
}

/// `kube-system/extension-apiserver-authentication`: the front proxy's CA, allowed names and header names, and
/// the cluster's client CA, as the API server publishes them.
public final class AuthenticationConfigWatcher: Sendable {
    public struct Settings: Sendable, Equatable {
        public var requestHeaderCAPEM: [UInt8]?
        public var allowedNames: [String]
        public var usernameHeaders: [String]
        public var groupHeaders: [String]
        public var extraHeaderPrefixes: [String]
        public var clientCAPEM: [UInt8]?
    }

    private let informer: Informer<ConfigMap>

    public init(client: KubernetesClient, logger: Logger, onChange: @escaping @Sendable (Settings) -> Void) {
        informer = Informer<ConfigMap>(
            client: client, path: "/api/v1/namespaces/kube-system/configmaps",
            query: ["fieldSelector": "metadata.name=extension-apiserver-authentication"], logger: logger
        ) { maps in
            guard let data = maps.values.first?.data else { return }
            onChange(Self.settings(data))
        }
    }

    public func start() { informer.start() }
    public func stop() async { await informer.stop() }

    /// Allowed names that no certificate has: what an allowed-names entry that cannot be read stands for, so the
    /// front proxy is refused (closed) rather than every name accepted (open).
    public static let noAllowedName = ["\u{0}unreadable requestheader-allowed-names"]

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

/// The serving certificate every replica shares: a Secret created once (whichever replica comes first; the others
/// read it), holding a CA and a certificate for the Service's names; the APIServices' `caBundle` is kept equal to
/// that CA.
public struct ServingCertificateBootstrap: Sendable {
    public let client: KubernetesClient
    public let namespace: String
    public let secretName: String
    public let serviceName: String
    public let apiServices: [String]
    public let logger: Logger

    public init(
        client: KubernetesClient, namespace: String, secretName: String, serviceName: String, apiServices: [String],
        logger: Logger
    ) {
        self.client = client
        self.namespace = namespace
        self.secretName = secretName
        self.serviceName = serviceName
        self.apiServices = apiServices
        self.logger = logger
    }

    /// The names the aggregator and in-cluster clients dial.
    public var hosts: [String] {
        [
            "\(serviceName).\(namespace).svc", "\(serviceName).\(namespace).svc.cluster.local", "\(serviceName).\(namespace)",
            serviceName,
        ]
    }

    /// Reads the Secret, creating it first if absent. Returns (CA PEM, certificate PEM, key PEM).
    public func ensureSecret() async throws -> (ca: [UInt8], certificate: [UInt8], key: [UInt8]) {
        let path = "/api/v1/namespaces/\(namespace)/secrets"
        do {
            return try Self.material(try await client.get("\(path)/\(secretName)", as: Secret.self))
        } catch let error as KubernetesError where error.isNotFound {
            let generated = try GeneratedCertificates.generate(caName: "accel-metrics-adapter-ca", hosts: hosts)
            let secret = Secret(
                metadata: ObjectMeta(name: secretName, namespace: namespace, labels: ["app.kubernetes.io/name": "accel-metrics-adapter"]),
                type: "kubernetes.io/tls",
                data: [
                    "ca.crt": Base64.encode(generated.caCertificatePEM), "tls.crt": Base64.encode(generated.certificatePEM),
                    "tls.key": Base64.encode(generated.keyPEM),
                ])
            do {
                _ = try await client.create(path, secret, as: Secret.self)
                logger.info("created the serving certificate Secret", metadata: ["secret": "\(namespace)/\(secretName)"])
            } catch let error as KubernetesError where error.isAlreadyExists {
                // Another replica won the race: use its certificate.
            }
            return try Self.material(try await client.get("\(path)/\(secretName)", as: Secret.self))
        }
    }

    static func material(_ secret: Secret) throws -> (ca: [UInt8], certificate: [UInt8], key: [UInt8]) {
        guard let data = secret.data, let ca = data["ca.crt"].flatMap(Base64.decode),
            let certificate = data["tls.crt"].flatMap(Base64.decode), let key = data["tls.key"].flatMap(Base64.decode)
        else {
            throw AdapterError(
                code: .invalidConfiguration,
                message: "Secret \(secret.metadata.namespace ?? "")/\(secret.metadata.name ?? "") lacks ca.crt, tls.crt or tls.key")
        }
        return (ca, certificate, key)
    }

    /// Sets each APIService's `caBundle` to `ca` where it differs. Errors are logged, not thrown: the APIServices
    /// may be managed elsewhere (cert-manager's CA injector).
    public func updateCABundles(_ ca: [UInt8]) async {
        let bundle = Base64.encode(ca)
        for name in apiServices {
            let path = "/apis/apiregistration.k8s.io/v1/apiservices/\(name)"
            do {
                let current = try await client.get(path, as: APIServiceBundle.self)
                guard current.spec?.caBundle != bundle else { continue }
                let patch = #"{"spec":{"caBundle":""# + bundle + #"","insecureSkipTLSVerify":false}}"#
                _ = try await client.mergePatch(path, Array(patch.utf8), as: APIServiceBundle.self)
                logger.info("updated the APIService caBundle", metadata: ["apiservice": "\(name)"])
            } catch {
                logger.warning("cannot update the APIService caBundle", metadata: ["apiservice": "\(name)", "error": "\(error)"])
            }
        }
    }

    struct APIServiceBundle: Decodable {
        struct Spec: Decodable { var caBundle: String? }
        var spec: Spec?
    }
}
