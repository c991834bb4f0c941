import AccelMetricsTesting
import ConfigYAML
import CurlHTTP
import Foundation
@testable import Kubernetes
import Logging
import Synchronization
import Testing

func pod(_ namespace: String, _ name: String, node: String = "n1", labels: [String: String] = [:]) -> [String: Any] {
    ["apiVersion": "v1", "kind": "Pod", "metadata": ["namespace": namespace, "name": name, "labels": labels],
     "spec": ["nodeName": node], "status": ["phase": "Running", "podIP": "10.0.0.9"]]
}

@Suite(.serialized) struct KubernetesTests {
    let logger = Logger(label: "k8s-test")

    func client(_ server: FakeAPIServer, credentials: KubernetesConfiguration.Credentials = .none, ca: [UInt8]? = nil) throws -> KubernetesClient {
        try KubernetesClient(
            configuration: KubernetesConfiguration(server: server.url, certificateAuthorityPEM: ca, credentials: credentials),
            logger: logger)
    }

    /// The fake API server over TLS, holding pod ml/a, with scripts/test-pki.sh's certificates written into `pki`
    /// (`ca.pem` signed the server's; `rogue-ca.pem` did not).
    func tlsServer(_ pki: TemporaryDirectory, arguments: [String] = []) throws -> FakeAPIServer {
        _ = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, pki.path])
        return try FakeAPIServer(
            seed: ["objects": [pod("ml", "a")]],
            arguments: ["--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("server.key")] + arguments, tls: true)
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func listsWithSelectorsAndPagesGetsCreatesAndPatches() async throws {
        let server = try FakeAPIServer(seed: ["objects": (0..<5).map { pod("ml", "p\($0)", node: $0 < 3 ? "n1" : "n2", labels: ["app": $0 % 2 == 0 ? "a" : "b"]) }])
        let client = try client(server)
        defer { Task { await client.shutdown() } }
        let all = try await client.list("/api/v1/pods", as: Pod.self, pageSize: 2)
        #expect(all.items.map { $0.metadata.name ?? "" } == ["p0", "p1", "p2", "p3", "p4"])
        #expect(!all.resourceVersion.isEmpty)
        let onNode = try await client.list("/api/v1/pods", query: ["fieldSelector": "spec.nodeName=n1", "labelSelector": "app=a"], as: Pod.self)
        #expect(onNode.items.map { $0.metadata.name ?? "" } == ["p0", "p2"])

        let one = try await client.get("/api/v1/namespaces/ml/pods/p3", as: Pod.self)
        #expect(one.spec?.nodeName == "n2")
        #expect(one.status?.podIP == "10.0.0.9")
        do {
            _ = try await client.get("/api/v1/namespaces/ml/pods/nope", as: Pod.self)
            Issue.record("no error for a missing pod")
        } catch let error as KubernetesError {
            #expect(error.isNotFound)
        }

        let secret = Secret(metadata: ObjectMeta(name: "cert", namespace: "ops"), type: "kubernetes.io/tls", data: ["tls.crt": Base64.encode(Array("x".utf8))])
        let created = try await client.create("/api/v1/namespaces/ops/secrets", secret, as: Secret.self)
        #expect(created.metadata.uid != nil)
        do {
            _ = try await client.create("/api/v1/namespaces/ops/secrets", secret, as: Secret.self)
            Issue.record("no conflict for a second create")
        } catch let error as KubernetesError {
            #expect(error.isAlreadyExists)
        }
        let patched = try await client.mergePatch(
            "/api/v1/namespaces/ops/secrets/cert", Array(#"{"data":{"ca.crt":"eQ=="}}"#.utf8), as: Secret.self)
        #expect(patched.data?["ca.crt"] == "eQ==")
        #expect(patched.data?["tls.crt"] == Base64.encode(Array("x".utf8)))
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func informerFollowsAddsDeletesExpiryAndDroppedWatches() async throws {
        let server = try FakeAPIServer(seed: ["objects": [pod("ml", "a"), pod("ml", "b", node: "n2")]])
        let client = try client(server)
        let changes = Mutex(0)
        let informer = Informer<Pod>(
            client: client, path: "/api/v1/pods", query: ["fieldSelector": "spec.nodeName=n1"], logger: logger,
            onChange: { _ in changes.withLock { $0 += 1 } })
        informer.start()
        func waitFor(_ expected: Set<String>) async throws {
            if await eventually(timeout: 30, { Set(informer.objects.keys) == expected }) { return }
            Issue.record("informer holds \(informer.objects.keys.sorted()), expected \(expected.sorted())")
        }
        try await waitFor(["ml/a"])
        #expect(informer.hasSynced)
        try server.control("POST", "/fake/objects", pod("ml", "c"))
        try await waitFor(["ml/a", "ml/c"])
        try server.control("DELETE", "/fake/objects?kind=Pod&namespace=ml&name=a")
        try await waitFor(["ml/c"])
        // The watch's version expires: list again, and changes made meanwhile are seen.
        try server.control("POST", "/fake/compact")
        try server.control("POST", "/fake/objects", pod("ml", "d"))
        try await waitFor(["ml/c", "ml/d"])
        // The connection drops: watch again.
        try server.control("POST", "/fake/drop-watches")
        try server.control("POST", "/fake/objects", pod("ml", "e"))
        try await waitFor(["ml/c", "ml/d", "ml/e"])
        // The API server fails for a while: back off and recover.
        try server.control("POST", "/fake/fail?count=2")
        try server.control("POST", "/fake/drop-watches")
        try server.control("POST", "/fake/objects", pod("ml", "f"))
        try await waitFor(["ml/c", "ml/d", "ml/e", "ml/f"])
        #expect(changes.withLock { $0 } >= 5)
        await informer.stop()
        await client.shutdown()
    }

    /// A watch refused right after every good list (RBAC with list but not watch, a proxy that cuts streams), or one
    /// a broken server expires at once from the fresh version the list gave, must not turn the informer into a LIST
    /// every quarter second (or in a tight loop) against the API server: the backoff keeps growing across the good
    /// lists, the failure is logged once, and the set still follows the lists.
    @Test(.tags(.endToEnd), .endToEndEnabled, arguments: ["/fake/forbid-watches", "/fake/expire-watches"])
    func aWatchFailingAfterEveryGoodListBacksOff(control: String) async throws {
        let server = try FakeAPIServer(seed: ["objects": [pod("ml", "a")]])
        let client = try client(server)
        let log = CapturedLog()
        try server.control("POST", "\(control)?count=100000")
        let informer = Informer<Pod>(
            client: client, path: "/api/v1/pods", query: ["fieldSelector": "spec.nodeName=n1"], logger: log.logger())
        informer.start()
        #expect(await eventually(timeout: 30) { informer.objects.keys.sorted() == ["ml/a"] })
        let before = try server.control("GET", "/fake/requests")["list"] as? Int ?? -1
        try await Task.sleep(for: .seconds(4))
        let lists = (try server.control("GET", "/fake/requests")["list"] as? Int ?? -1) - before
        // Backoff 0.25, 0.5, 1, 2, 4 s (±20 %): at most 5 lists in 4 s. Reset by each good list, it was about 16 with
        // refused watches, and hundreds with expired ones.
        #expect((1...5).contains(lists), "\(lists) lists in 4 s")
        #expect(log.count("list/watch failed", level: .warning) == 1, "\(log.all)")
        #expect(log.count("list recovered") <= 1, "\(log.all)")
        // Watches served again: the next cycle watches, and changes arrive as events.
        try server.control("POST", "\(control)?count=0")
        try server.control("POST", "/fake/objects", pod("ml", "b"))
        #expect(await eventually(timeout: 30) { informer.objects.keys.sorted() == ["ml/a", "ml/b"] })
        try server.control("POST", "/fake/objects", pod("ml", "c"))
        #expect(await eventually(timeout: 10) { informer.objects.keys.sorted() == ["ml/a", "ml/b", "ml/c"] })
        await informer.stop()
        await client.shutdown()
    }

    /// Issue 15, case 7: a watch whose connection goes silent without closing (a half-open connection) used to
    /// freeze the informer's set for good. Past its read deadline the informer lists again, and sees the change.
    @Test(.tags(.endToEnd), .endToEndEnabled) func aSilentWatchHitsItsReadDeadlineAndTheInformerListsAgain() async throws {
        let server = try FakeAPIServer(seed: ["objects": [pod("ml", "a")]])
        let client = try client(server)
        let informer = Informer<Pod>(
            client: client, path: "/api/v1/pods", query: ["fieldSelector": "spec.nodeName=n1"], logger: logger,
            watchSeconds: 60, readTimeoutSeconds: 1.5)
        informer.start()
        func waitFor(_ expected: Set<String>, within seconds: Double) async throws -> Bool {
            await eventually(timeout: seconds) { Set(informer.objects.keys) == expected }
        }
        #expect(try await waitFor(["ml/a"], within: 30))
        // Healthy watches carry bookmarks every second, inside the deadline: no relist needed for this one.
        try server.control("POST", "/fake/objects", pod("ml", "b"))
        #expect(try await waitFor(["ml/a", "ml/b"], within: 10))
        try server.control("POST", "/fake/freeze-watches")
        try server.control("POST", "/fake/objects", pod("ml", "c"))
        let seen = try await waitFor(["ml/a", "ml/b", "ml/c"], within: 15)
        #expect(seen, "the informer holds \(informer.objects.keys.sorted()) after its watch went silent")
        await informer.stop()
        await client.shutdown()
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func reviewsGoOutFieldByField() async throws {
        let server = try FakeAPIServer(seed: [
            "tokens": ["t0k3n": ["username": "system:serviceaccount:kube-system:hpa", "uid": "u-1", "groups": ["system:serviceaccounts"]]],
            "allow": [["user": "alice", "verb": "get", "resource": "pods"]],
        ])
        let client = try client(server)
        defer { Task { await client.shutdown() } }
        let review = SubjectAccessReview(spec: .init(
            resourceAttributes: .init(namespace: "ml", verb: "get", group: "custom.metrics.k8s.io", version: "v1beta2",
                                      resource: "pods", subresource: "gpu_utilization", name: "*"),
            user: "alice", groups: ["dev"], extra: ["scopes": ["a"]], uid: "u-9"))
        let answer = try await client.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review, as: SubjectAccessReview.self)
        #expect(answer.status?.allowed == true)
        let token = try await client.create("/apis/authentication.k8s.io/v1/tokenreviews", TokenReview(token: "t0k3n"), as: TokenReview.self)
        #expect(token.status?.authenticated == true)
        #expect(token.status?.user?.username == "system:serviceaccount:kube-system:hpa")
        let recorded = try server.control("GET", "/fake/reviews")
        let sar = (recorded["subjectaccessreviews"] as? [[String: Any]])?.first
        let spec = sar?["spec"] as? [String: Any]
        #expect(sar?["apiVersion"] as? String == "authorization.k8s.io/v1")
        #expect(sar?["kind"] as? String == "SubjectAccessReview")
        #expect(spec?["user"] as? String == "alice")
        #expect(spec?["groups"] as? [String] == ["dev"])
        #expect(spec?["uid"] as? String == "u-9")
        #expect(spec?["extra"] as? [String: [String]] == ["scopes": ["a"]])
        let attributes = spec?["resourceAttributes"] as? [String: String]
        #expect(attributes == ["namespace": "ml", "verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta2",
                               "resource": "pods", "subresource": "gpu_utilization", "name": "*"])
    }

    /// A server URL needs a host, and trailing slashes all go (fuzz finding: `https://` became `https:/`).
    @Test(arguments: [
        ("https://", nil), ("http://", nil), ("https:///api", nil), ("https://?x", nil),
        ("https://10.0.0.1:6443//", "https://10.0.0.1:6443"), ("http://h/", "http://h"), ("https://h/prefix/", "https://h/prefix"),
        ("http://1https://", "http://1https:"),
    ] as [(String, String?)])
    func kubeconfigServerNeedsAHost(server: String, expected: String?) throws {
        let yaml = """
            current-context: x
            clusters: [{name: c, cluster: {server: "\(server)"}}]
            contexts: [{name: x, context: {cluster: c}}]
            """
        let parse = { () throws(KubernetesError) -> KubernetesConfiguration in
            try KubernetesConfiguration.kubeconfig(parsing: Array(yaml.utf8), path: "/k/config", context: nil, environment: [:]) { (file) throws(KubernetesError) -> [UInt8] in
                throw KubernetesError(code: .configuration, message: "no file \(file)")
            }
        }
        if let expected {
            #expect(try parse().server == expected)
        } else {
            #expect(throws: KubernetesError.self) { try parse() }
        }
    }

    @Test func kubeconfigShapesAndInClusterFiles() throws {
        let directory = TemporaryDirectory(prefix: "accel-kubeconfig")
        defer { directory.remove() }
        let dir = directory.url
        try directory.write("certs/ca.pem", "CA-PEM")
        let config = dir.appendingPathComponent("config")
        try """
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
              - name: c1
                cluster: {server: "https://10.0.0.1:6443", certificate-authority: certs/ca.pem}
              - name: c2
                cluster: {server: "https://k8s.example:443", certificate-authority-data: \(Base64.encode(Array("DATA".utf8))), insecure-skip-tls-verify: true}
            users:
              - name: tok
                user: {token: abc}
              - name: cert
                user: {client-certificate-data: \(Base64.encode(Array("CERT".utf8))), client-key-data: \(Base64.encode(Array("KEY".utf8)))}
            contexts:
              - name: dev
                context: {cluster: c1, user: tok, namespace: ml}
              - name: other
                context: {cluster: c2, user: cert}
            """.write(to: config, atomically: false, encoding: .utf8)
        let dev = try KubernetesConfiguration.kubeconfig(path: config.path, environment: [:])
        #expect(dev.server == "https://10.0.0.1:6443")
        #expect(dev.certificateAuthorityPEM == Array("CA-PEM".utf8))
        #expect(dev.namespace == "ml")
        guard case .token("abc") = dev.credentials else { Issue.record("\(dev.credentials)"); return }
        let other = try KubernetesConfiguration.kubeconfig(path: config.path, context: "other", environment: [:])
        #expect(other.certificateAuthorityPEM == Array("DATA".utf8))
        #expect(other.insecureSkipTLSVerify)
        guard case .clientCertificate(let cert, let key) = other.credentials else { Issue.record("\(other.credentials)"); return }
        #expect(cert == Array("CERT".utf8) && key == Array("KEY".utf8))
        #expect(throws: KubernetesError.self) { try KubernetesConfiguration.kubeconfig(path: config.path, context: "missing", environment: [:]) }
        #expect(throws: KubernetesError.self) { try KubernetesConfiguration.kubeconfig(path: dir.appendingPathComponent("nope").path, environment: [:]) }

        let sa = dir.appendingPathComponent("sa")
        try FileManager.default.createDirectory(at: sa, withIntermediateDirectories: true)
        try "tok".write(to: sa.appendingPathComponent("token"), atomically: false, encoding: .utf8)
        try "accel-metrics\n".write(to: sa.appendingPathComponent("namespace"), atomically: false, encoding: .utf8)
        let inCluster = try KubernetesConfiguration.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], root: sa.path)
        #expect(inCluster.server == "https://10.96.0.1:443")
        #expect(inCluster.namespace == "accel-metrics")
        #expect(throws: KubernetesError.self) { try KubernetesConfiguration.inCluster(environment: [:], root: sa.path) }
    }

    /// client-go's choice: the cluster's `proxy-url` for every request, else the environment's proxies, where
    /// NO_PROXY (which clusters that set a proxy fill with the API server's address) still applies.
    @Test func theProxyComesFromTheKubeconfigOrTheEnvironment() throws {
        func parse(_ clusterFields: String, _ environment: [String: String]) throws(KubernetesError) -> KubernetesConfiguration {
            let yaml = """
                current-context: x
                clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"\(clusterFields)}}]
                contexts: [{name: x, context: {cluster: c}}]
                """
            return try KubernetesConfiguration.kubeconfig(parsing: Array(yaml.utf8), path: "/k/config", context: nil, environment: environment) {
                (file) throws(KubernetesError) -> [UInt8] in throw KubernetesError(code: .configuration, message: "no file \(file)")
            }
        }
        let environment = ["HTTPS_PROXY": "http://corp:3128"]
        let fromFile = try parse(", proxy-url: \"http://jump:8080\"", environment)
        #expect(fromFile.proxy == HTTPProxy(all: "http://jump:8080"))
        #expect(fromFile.proxy.route(for: fromFile.server) == "http://jump:8080")
        let fromEnvironment = try parse("", environment)
        #expect(fromEnvironment.proxy.route(for: fromEnvironment.server) == "http://corp:3128")
        #expect(try parse("", [:]).proxy == .direct)
        #expect(throws: KubernetesError.self) { try parse(", proxy-url: \"ftp://jump\"", [:]) }

        let directory = TemporaryDirectory(prefix: "accel-sa-proxy")
        defer { directory.remove() }
        try directory.write("token", "tok")
        let cluster = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "HTTPS_PROXY": "http://corp:3128"]
        let proxied = try KubernetesConfiguration.inCluster(environment: cluster, root: directory.path)
        #expect(proxied.proxy.route(for: proxied.server) == "http://corp:3128")
        let exempt = try KubernetesConfiguration.inCluster(environment: cluster.merging(["NO_PROXY": "10.96.0.0/12,.svc"]) { $1 }, root: directory.path)
        #expect(exempt.proxy.route(for: exempt.server) == nil)
        // An unusable proxy fails the client at its start, with the variable's name.
        var broken = exempt
        broken.proxy = .environment(["HTTPS_PROXY": "ftp://corp"])
        #expect { _ = try KubernetesClient(configuration: broken, logger: logger) } throws: {
            ($0 as? KubernetesError)?.code == .configuration && "\($0)".contains("HTTPS_PROXY")
        }
    }

    /// Lists and a watch through Debian's tinyproxy, in a CONNECT tunnel, to the API server over TLS.
    @Test(.tags(.endToEnd), .endToEndEnabled) func throughARealProxyInATunnel() async throws {
        let pki = TemporaryDirectory(prefix: "accel-pki-proxy")
        defer { pki.remove() }
        let server = try tlsServer(pki)
        let tinyproxy = try Tinyproxy()
        defer { tinyproxy.stop() }
        let log = CapturedLog()
        let client = try KubernetesClient(
            configuration: KubernetesConfiguration(
                server: server.url, certificateAuthorityPEM: Array(try Data(contentsOf: pki.url("ca.pem"))),
                proxy: HTTPProxy(all: tinyproxy.url)),
            logger: log.logger())
        let pods = try await client.list("/api/v1/pods", as: Pod.self)
        #expect(pods.items.map { $0.metadata.name ?? "" } == ["a"])
        let seen = Mutex<[String]>([])
        let watch = Task {
            try await client.watch("/api/v1/pods", resourceVersion: pods.resourceVersion, as: Pod.self, timeoutSeconds: 30) { event in
                seen.withLock { $0.append(event.object.metadata.name ?? "") }
            }
        }
        defer { watch.cancel() }
        try server.control("POST", "/fake/objects", pod("ml", "b"))
        #expect(await eventually(timeout: 15) { seen.withLock { $0.contains("b") } })
        watch.cancel()
        _ = try? await watch.value
        await client.shutdown()
        #expect(tinyproxy.requests.contains("CONNECT 127.0.0.1:\(server.port) HTTP/1.1"), "\(tinyproxy.process.log)")
        #expect(log.all.contains { $0.message == "API server requests go through a proxy" && $0.metadata.contains(tinyproxy.url) })
    }

    /// A proxy that wants credentials gets them from the proxy URL's user information; wrong ones are a clear failure
    /// naming the proxy's answer (tinyproxy's is 401, where RFC 9110 has 407), with the password hidden.
    @Test(.tags(.endToEnd), .endToEndEnabled) func throughAnAuthenticatingProxy() async throws {
        let pki = TemporaryDirectory(prefix: "accel-pki-proxy-auth")
        defer { pki.remove() }
        let server = try tlsServer(pki)
        let tinyproxy = try Tinyproxy(basicAuth: ("svc", "p-ss.w_1"))
        defer { tinyproxy.stop() }
        func client(_ userInfo: String) throws -> KubernetesClient {
            try KubernetesClient(
                configuration: KubernetesConfiguration(
                    server: server.url, certificateAuthorityPEM: Array(try Data(contentsOf: pki.url("ca.pem"))),
                    proxy: HTTPProxy(all: "http://\(userInfo)@127.0.0.1:\(tinyproxy.port)")),
                logger: logger)
        }
        let good = try client("svc:p-ss.w_1")
        #expect(try await good.list("/api/v1/pods", as: Pod.self).items.count == 1)
        await good.shutdown()
        let wrong = try client("svc:wrong")
        do {
            _ = try await wrong.list("/api/v1/pods", as: Pod.self)
            Issue.record("listed through the proxy with wrong credentials")
        } catch let error as KubernetesError {
            #expect(error.code == .transport && error.message.contains("CONNECT tunnel failed, response 401"), "\(error)")
            #expect(!error.message.contains("wrong"), "the password is in the error: \(error)")
        }
        await wrong.shutdown()
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func tlsWithTheClustersCAAndABearerToken() async throws {
        let pki = TemporaryDirectory(prefix: "accel-pki-k8s")
        defer { pki.remove() }
        let server = try tlsServer(pki, arguments: ["--token", "s3cret"])
        let ca = Array(try Data(contentsOf: pki.url("ca.pem")))
        let good = try client(server, credentials: .token("s3cret"), ca: ca)
        let pods = try await good.list("/api/v1/pods", as: Pod.self)
        #expect(pods.items.count == 1)
        await good.shutdown()
        let wrongToken = try client(server, credentials: .token("nope"), ca: ca)
        do {
            _ = try await wrongToken.list("/api/v1/pods", as: Pod.self)
            Issue.record("accepted a wrong token")
        } catch let error as KubernetesError {
            #expect(error.status == 401)
        }
        await wrongToken.shutdown()
        let wrongCA = try client(server, credentials: .token("s3cret"), ca: Array(try Data(contentsOf: pki.url("rogue-ca.pem"))))
        do {
            _ = try await wrongCA.list("/api/v1/pods", as: Pod.self)
            Issue.record("trusted a server its CA did not sign")
        } catch let error as KubernetesError {
            #expect(error.code == .transport)
        }
        await wrongCA.shutdown()
    }
}
