import AdapterStore
import ConfigYAML
import HTTPServer
public import Kubernetes
public import Logging

/// The serving certificate every replica shares: a Secret created once (whichever replica comes first; the others
/// read it), holding a CA and a certificate for the Service's names; the APIServices' `caBundle` is kept equal to
/// that CA.
public struct ServingCertificateBootstrap: Sendable {
    /// Reads and creates the Secret, patches the APIServices.
    public let client: KubernetesClient
    /// The adapter's own namespace: where the Secret lives, and part of the certificate's names.
    public let namespace: String
    /// `--cert-secret`.
    public let secretName: String
    /// `--service-name`: the certificate is made out to its DNS names (``hosts``).
    public let serviceName: String
    /// `--apiservices`: the APIServices whose `caBundle` follows the Secret's CA.
    public let apiServices: [String]
    /// The Secret's creation and each APIService update, done or failed.
    public let logger: Logger

    /// Memberwise; nothing is read or written until ``ensureSecret()`` or ``updateCABundles(_:)``.
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
