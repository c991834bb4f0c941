import Foundation
import HTTPServer
import Testing

/// The adapter as the aggregator meets it: HTTPS with the test PKI, the front proxy's certificate and headers,
/// client certificates, bearer tokens, SubjectAccessReviews — against a fake API server that also serves the pods
/// (labels) and the exporters' EndpointSlice. Requests go out with curl (kubectl cannot send X-Remote-*) and kubectl.
@Suite(.serialized) final class AdapterSecurityTests {
    static let hpaUser = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"

    let pki: URL
    let apiServer: BackgroundProcess
    let apiPort: Int
    let exporter: FakeExporter
    let adapter: BackgroundProcess
    let port: Int
    let sampleTime = Date().timeIntervalSince1970.rounded(.down)

    init() throws {
        pki = try Harness.temporaryDirectory("accel-pki")
        let (_, err, status) = try runProgram("/bin/bash", [Harness.packageRoot.appendingPathComponent("scripts/test-pki.sh").path, pki.path])
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }

        var node = MetricsAPITests.node
        node.sampleTime = sampleTime
        exporter = try FakeExporter(node)

        func pod(_ name: String, _ app: String) -> [String: Any] {
            ["apiVersion": "v1", "kind": "Pod", "metadata": ["namespace": "ml", "name": name, "labels": ["app": app]],
             "spec": ["nodeName": "node-a"]]
        }
        let seed: [String: Any] = [
            "objects": [
                pod("train-0", "train"), pod("infer-0", "infer"), pod("infer-1", "infer"),
                [
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": ["namespace": "accel-metrics", "name": "accel-exporter-abc", "labels": ["kubernetes.io/service-name": "accel-exporter"]],
                    "addressType": "IPv4",
                    "endpoints": [["addresses": ["127.0.0.1"], "conditions": ["ready": true], "nodeName": "node-a"]],
                    "ports": [["name": "metrics", "port": exporter.server.port, "protocol": "TCP"]],
                ],
            ],
            "tokens": ["hpa-token": ["username": Self.hpaUser, "uid": "u-hpa", "groups": ["system:serviceaccounts"]]],
            "allow": [["user": Self.hpaUser, "verb": "get"], ["user": Self.hpaUser, "verb": "list"]],
        ]
        let seedFile = pki.appendingPathComponent("seed.json")
        try JSONSerialization.data(withJSONObject: seed).write(to: seedFile)
        apiServer = try BackgroundProcess("/usr/bin/python3", [Harness.packageRoot.appendingPathComponent("scripts/fake-apiserver.py").path, "--seed", seedFile.path])
        apiServer.killWith = SIGKILL
        var found: Int?
        for _ in 0..<200 where found == nil {
            Thread.sleep(forTimeInterval: 0.05)
            found = Int(apiServer.output.split(separator: "\n").first ?? "")
        }
        apiPort = try #require(found)
        let kubeconfig = pki.appendingPathComponent("kubeconfig")
        try """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters: [{name: fake, cluster: {server: "http://127.0.0.1:\(apiPort)"}}]
            users: [{name: adapter, user: {token: adapter-token}}]
            contexts: [{name: test, context: {cluster: fake, user: adapter, namespace: accel-metrics}}]
            """.write(to: kubeconfig, atomically: false, encoding: .utf8)

        port = try Harness.freePort()
        adapter = try BackgroundProcess(
            Harness.binary("accel-metrics-adapter"),
            [
                "--secure-port", "\(port)", "--bind-address", "127.0.0.1",
                "--tls-cert-file", pki.appendingPathComponent("server.pem").path,
                "--tls-private-key-file", pki.appendingPathComponent("server.key").path,
                "--requestheader-client-ca-file", pki.appendingPathComponent("proxy-ca.pem").path,
                "--requestheader-allowed-names", "front-proxy-client",
                "--client-ca-file", pki.appendingPathComponent("client-ca.pem").path,
                "--kubeconfig", kubeconfig.path, "--exporters.service", "accel-metrics/accel-exporter",
                "--metric-resolution", "250ms", "--metrics-max-age", "5m",
            ])
        try adapter.waitForLog("accel-metrics-adapter started")
    }

    deinit {
        adapter.stop()
        apiServer.stop()
        try? FileManager.default.removeItem(at: pki)
    }

    static let podsPath = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization?labelSelector=app%3Dinfer"

    func curl(_ path: String, cert: String? = nil, headers: [String] = [], token: String? = nil) throws
        -> (status: Int, json: [String: Any]?)
    {
        var arguments = ["-s", "-m", "10", "-w", "\n%{http_code}", "--cacert", pki.appendingPathComponent("ca.pem").path]
        if let cert {
            arguments += ["--cert", pki.appendingPathComponent("\(cert).pem").path, "--key", pki.appendingPathComponent("\(cert).key").path]
        }
        for header in headers { arguments += ["-H", header] }
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        arguments.append("https://127.0.0.1:\(port)\(path)")
        let (out, _, _) = try runProgram("/usr/bin/curl", arguments)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        let body = lines.dropLast().joined(separator: "\n")
        return (Int(lines.last ?? "") ?? 0, try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    /// What the fake API server received.
    func reviews() throws -> [[String: Any]] {
        let (out, _, _) = try runProgram("/usr/bin/curl", ["-s", "http://127.0.0.1:\(apiPort)/fake/reviews"])
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return json?["subjectaccessreviews"] as? [[String: Any]] ?? []
    }

    var proxyHeaders: [String] {
        ["X-Remote-User: \(Self.hpaUser)", "X-Remote-Group: system:serviceaccounts", "X-Remote-Group: system:authenticated",
         "X-Remote-Extra-Authentication.kubernetes.io%2fpod-name: kube-controller-manager-0"]
    }

    @Test func theFrontProxyPathEndToEnd() throws {
        // Values come once the EndpointSlice's exporter was scraped and the pod watch knows the labels.
        let deadline = Date().addingTimeInterval(20)
        var answer: (status: Int, json: [String: Any]?) = (0, nil)
        while Date() < deadline {
            answer = try curl(Self.podsPath, cert: "proxy-client", headers: proxyHeaders)
            if answer.status == 200, let items = answer.json?["items"] as? [[String: Any]], items.count == 2 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(answer.status == 200, "\(adapter.log.suffix(1500))")
        let names = Set((answer.json?["items"] as? [[String: Any]] ?? []).compactMap { ($0["describedObject"] as? [String: Any])?["name"] as? String })
        #expect(names == ["infer-0", "infer-1"])

        // The identity reached the SubjectAccessReview exactly, with the attributes of the URL.
        let review = try #require(try reviews().last { ($0["spec"] as? [String: Any])?["user"] as? String == Self.hpaUser })
        let spec = review["spec"] as? [String: Any] ?? [:]
        #expect(spec["groups"] as? [String] == ["system:serviceaccounts", "system:authenticated"])
        #expect(spec["extra"] as? [String: [String]] == ["authentication.kubernetes.io/pod-name": ["kube-controller-manager-0"]])
        #expect(spec["resourceAttributes"] as? [String: String] == [
            "namespace": "ml", "verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta2", "resource": "pods",
            "subresource": "gpu_utilization", "name": "*",
        ])
    }

    @Test func refusals() throws {
        // No certificate, no token.
        let anonymous = try curl(Self.podsPath, headers: proxyHeaders)
        #expect(anonymous.status == 401)
        #expect(anonymous.json?["reason"] as? String == "Unauthorized")
        // The proxy CA, but a name outside --requestheader-allowed-names.
        #expect(try curl(Self.podsPath, cert: "proxy-other", headers: proxyHeaders).status == 401)
        // The right name from another CA.
        #expect(try curl(Self.podsPath, cert: "rogue", headers: proxyHeaders).status == 401)
        // An expired proxy certificate.
        #expect(try curl(Self.podsPath, cert: "expired", headers: proxyHeaders).status == 401)
        // A trusted proxy speaking for a user RBAC does not allow.
        let denied = try curl(Self.podsPath, cert: "proxy-client", headers: ["X-Remote-User: mallory"])
        #expect(denied.status == 403)
        #expect(denied.json?["reason"] as? String == "Forbidden")
        let message = denied.json?["message"] as? String ?? ""
        #expect(message.contains(#"User "mallory" cannot get resource "pods/gpu_utilization""#))
        // A client certificate from --client-ca-file: user alice, groups dev and ops — authenticated, then denied.
        let alice = try curl(Self.podsPath, cert: "alice")
        #expect(alice.status == 403)
        let review = try reviews().last { ($0["spec"] as? [String: Any])?["user"] as? String == "alice" }
        #expect((review?["spec"] as? [String: Any])?["groups"] as? [String] == ["dev", "ops"])
        // Health needs nothing.
        #expect(try curl("/readyz").status == 200)
    }

    @Test func bearerTokensAndKubectl() throws {
        let deadline = Date().addingTimeInterval(20)
        var status = 0
        while Date() < deadline {
            status = try curl(Self.podsPath, token: "hpa-token").status
            if status == 200 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(status == 200)
        #expect(try curl(Self.podsPath, token: "wrong").status == 401)
        // kubectl over TLS, verifying the serving certificate, with the token.
        let kubectl = try #require(Harness.kubectl)
        let (out, err, code) = try runProgram(kubectl, [
            "--server", "https://127.0.0.1:\(port)", "--certificate-authority", pki.appendingPathComponent("ca.pem").path,
            "--token", "hpa-token", "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization",
        ])
        #expect(code == 0, "\(err)")
        #expect(out.contains("\"MetricValueList\""))
    }
}
