import CommandLineSupport
import ConfigYAML
import AdapterSources
import AdapterStore
import AggregatedAPI
import Dispatch
import HTTPServer
import Kubernetes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension AdapterFlags {
    /// HTTPS on --secure-port with authentication and authorization in front of the API.
    ///
    /// Serving certificate: `--tls-cert-file` (re-read when it changes); else, in a cluster, the shared Secret
    /// (created if absent) whose CA goes into the APIServices' `caBundle`; else a certificate generated at start.
    /// Client certificates: the front proxy's CA and the client CA are named in the TLS handshake; both come from
    /// the flags or from the cluster's `extension-apiserver-authentication` ConfigMap, watched.
    func startSecureServer(
        kube: KubernetesClient?, handler: APIHandler, metrics: AdapterMetrics, logger: Logger
    ) async throws -> (HTTPServer, [Task<Void, Never>]) {
        var tasks: [Task<Void, Never>] = []
        // 1. The serving certificate.
        var serving: (certificate: [UInt8], key: [UInt8])
        var bootstrap: ServingCertificateBootstrap?
        if let tlsCertFile, let tlsKeyFile {
            serving = (Self.read(tlsCertFile, flag: "--tls-cert-file"), Self.read(tlsKeyFile, flag: "--tls-private-key-file"))
        } else if let kube, let namespace = kube.configuration.namespace {
            let setup = ServingCertificateBootstrap(
                client: kube, namespace: namespace, secretName: certSecret, serviceName: serviceName,
                apiServices: apiServices.split(separator: ",").map(String.init), logger: logger)
            bootstrap = setup
            do {
                let material = try await setup.ensureSecret()
                serving = (material.certificate, material.key)
                await setup.updateCABundles(material.ca)
            } catch {
                // Serve at once with a certificate of our own (discovery must answer), and keep trying.
                logger.error("cannot read or create the serving certificate Secret; serving a temporary certificate", metadata: ["error": "\(error)"])
                let generated = try GeneratedCertificates.generate(caName: "accel-metrics-adapter-temporary", hosts: setup.hosts)
                serving = (generated.certificatePEM, generated.keyPEM)
            }
        } else {
            let generated = try GeneratedCertificates.generate(
                caName: "accel-metrics-adapter-self-signed", hosts: ["localhost", "127.0.0.1", "::1"] + (Self.hostName().map { [$0] } ?? []))
            serving = (generated.certificatePEM, generated.keyPEM)
            logger.warning("no --tls-cert-file and no cluster: serving a self-signed certificate generated at start")
        }

        // 2. Who may present client certificates, and how headers from the front proxy are read.
        var requestHeaderCA: [UInt8]?
        let clientCA: [UInt8]? = clientCAFile.map { Self.read($0, flag: "--client-ca-file") }
        var requestHeader = RequestHeaderSettings(verifier: nil)
        if let requestHeaderCAFile {
            let pem = Self.read(requestHeaderCAFile, flag: "--requestheader-client-ca-file")
            requestHeaderCA = pem
            requestHeader = RequestHeaderSettings(
                verifier: CertificateVerifier(try CertificateAuthority(pem: pem)),
                allowedNames: Self.allowedNames(requestHeaderAllowedNames), usernameHeaders: Self.list(requestHeaderUsernameHeaders),
                groupHeaders: Self.list(requestHeaderGroupHeaders), extraHeaderPrefixes: Self.list(requestHeaderExtraPrefixes))
        }
        let authenticator = Authenticator(
            requestHeader: requestHeader, clientCA: try clientCA.map { CertificateVerifier(try CertificateAuthority(pem: $0)) },
            tokens: kube.map { KubernetesReviewer(client: $0) })
        let authorizer: Authorizer?
        if authorizationMode == "AlwaysAllow" {
            logger.warning("--authorization-mode=AlwaysAllow: every authenticated user may read every metric. Local development only!")
            authorizer = nil
        } else {
            authorizer = kube.map { Authorizer(reviewer: KubernetesReviewer(client: $0)) }
        }
        let access = AccessControl(authenticator: authenticator, authorizer: authorizer, metrics: metrics, logger: logger)

        @Sendable func tls(_ serving: (certificate: [UInt8], key: [UInt8]), _ requestHeaderCA: [UInt8]?, _ clientCA: [UInt8]?)
            -> HTTPServer.TLSConfiguration
        {
            let clientCAs = (requestHeaderCA ?? []) + [UInt8(ascii: "\n")] + (clientCA ?? [])
            return HTTPServer.TLSConfiguration(
                certificateChainPEM: serving.certificate, privateKeyPEM: serving.key,
                clientCAsPEM: requestHeaderCA == nil && clientCA == nil ? nil : clientCAs)
        }
        let server = HTTPServer(
            configuration: HTTPServer.Configuration(
                host: bindAddress, port: securePort, threads: 8, tls: tls(serving, requestHeaderCA, clientCA)),
            logger: logger, handler: handler.guarded(by: access))
        do {
            try server.start()
        } catch {
            Self.fail("cannot serve HTTPS on --secure-port \(securePort): \(error)")
        }
        logger.info("serving HTTPS", metadata: ["port": "\(server.port)"])

        // 3. What changes while running: the certificate files, the Secret, the cluster's authentication ConfigMap.
        let state = TLSMaterial(serving: serving, requestHeaderCA: requestHeaderCA, clientCA: clientCA)
        @Sendable func apply() {
            let current = state.value.withLock { $0 }
            do {
                try server.reloadTLS(tls(current.serving, current.requestHeaderCA, current.clientCA))
            } catch {
                logger.error("new TLS material refused; keeping the previous", metadata: ["error": "\(error)"])
            }
        }
        if let tlsCertFile, let tlsKeyFile {
            tasks.append(Task {
                var last = Self.fingerprint(tlsCertFile, tlsKeyFile)
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(10))
                    let now = Self.fingerprint(tlsCertFile, tlsKeyFile)
                    guard now != last else { continue }
                    last = now
                    guard let certificate = try? Self.readFile(tlsCertFile), let key = try? Self.readFile(tlsKeyFile) else { continue }
                    state.value.withLock { $0.serving = (certificate, key) }
                    apply()
                }
            })
        }
        if let bootstrap {
            tasks.append(Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(60))
                    guard let material = try? await bootstrap.ensureSecret() else { continue }
                    let changed = state.value.withLock { current -> Bool in
                        guard current.serving.certificate != material.certificate else { return false }
                        current.serving = (material.certificate, material.key)
                        return true
                    }
                    if changed { apply() }
                    await bootstrap.updateCABundles(material.ca)
                }
            })
        }
        if let kube, requestHeaderCAFile == nil {
            let fixedClientCA = clientCAFile != nil
            // Not ready until the front proxy can be trusted: the Service then sends no traffic this replica would
            // refuse.
            handler.readiness.require("extension-apiserver-authentication")
            let watcher = AuthenticationConfigWatcher(client: kube, logger: logger) { settings in
                let verifier = settings.requestHeaderCAPEM.flatMap { try? CertificateAuthority(pem: $0) }.map(CertificateVerifier.init)
                authenticator.update(requestHeader: RequestHeaderSettings(
                    verifier: verifier, allowedNames: settings.allowedNames, usernameHeaders: settings.usernameHeaders,
                    groupHeaders: settings.groupHeaders, extraHeaderPrefixes: settings.extraHeaderPrefixes))
                if !fixedClientCA {
                    authenticator.update(clientCA: settings.clientCAPEM.flatMap { try? CertificateAuthority(pem: $0) }.map(CertificateVerifier.init))
                }
                state.value.withLock {
                    $0.requestHeaderCA = settings.requestHeaderCAPEM
                    if !fixedClientCA { $0.clientCA = settings.clientCAPEM }
                }
                apply()
                handler.readiness.satisfy("extension-apiserver-authentication")
                if settings.allowedNames == AuthenticationConfigWatcher.noAllowedName {
                    logger.error("requestheader-allowed-names in kube-system/extension-apiserver-authentication is not a JSON list of names: the front proxy is refused until it is")
                } else {
                    logger.info("front-proxy settings loaded from kube-system/extension-apiserver-authentication",
                                metadata: ["allowed_names": "\(settings.allowedNames.joined(separator: ","))"])
                }
            }
            watcher.start()
            tasks.append(Task {
                await withTaskCancellationHandler {
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                } onCancel: {
                    Task { await watcher.stop() }
                }
            })
        }
        return (server, tasks)
    }

    /// `--requestheader-allowed-names`: empty text allows any name (as the API server's flag does), but text that
    /// names none (`,`, spaces) is a mistake that would do the same: refused at start, never read as "any".
    static func allowedNames(_ text: String) -> [String] {
        let names = list(text)
        if names.isEmpty && text.contains(where: { !$0.isWhitespace }) {
            fail("--requestheader-allowed-names: \"\(text)\" names no common name (leave it empty to allow any)")
        }
        return names
    }

    static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).filter { !$0.isWhitespace } }.filter { !$0.isEmpty }
    }

    static func read(_ path: String, flag: String) -> [UInt8] {
        do {
            return try readFile(path)
        } catch {
            fail("\(flag): \(error)")
        }
    }

    static func readFile(_ path: String) throws -> [UInt8] { try ConfigFile.read(path) }

    static func environmentVariables() -> [String: String] { CommandLineSupport.environmentVariables() }
    static func hostName() -> String? { CommandLineSupport.hostName() }
    static func parseLevel(_ s: String) throws -> Logger.Level { try CommandLineSupport.parseLevel(s) }
    static func parseDuration(_ s: String, flag: String, minimum: Double) throws -> Double {
        try CommandLineSupport.parseDuration(s, flag: flag, minimum: minimum)
    }
    static func fail(_ message: String) -> Never { CommandLineSupport.fail(program: "accel-metrics-adapter", message) }

    /// Changes when either file is replaced or rewritten (Secret volume updates swap a symlink).
    static func fingerprint(_ paths: String...) -> [Int] {
        paths.flatMap { path -> [Int] in
            var info = stat()
            guard stat(path, &info) == 0 else { return [0, 0, 0] }
            return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)]
        }
    }


}

/// The TLS material in force, shared by the tasks that update it.
final class TLSMaterial: Sendable {
    struct Material {
        var serving: (certificate: [UInt8], key: [UInt8])
        var requestHeaderCA: [UInt8]?
        var clientCA: [UInt8]?
    }

    let value: Mutex<Material>

    init(serving: (certificate: [UInt8], key: [UInt8]), requestHeaderCA: [UInt8]?, clientCA: [UInt8]?) {
        value = Mutex(Material(serving: serving, requestHeaderCA: requestHeaderCA, clientCA: clientCA))
    }
}
