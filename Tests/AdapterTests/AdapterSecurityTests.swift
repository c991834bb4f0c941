import AccelMetricsTesting
import Foundation
import HTTPServer
import Testing

/// The adapter as the aggregator meets it: HTTPS with the test PKI, the front proxy's certificate and headers,
/// client certificates, bearer tokens, SubjectAccessReviews — against a fake API server that also serves the pods
/// (labels) and the exporters' EndpointSlice. Requests go out with curl (kubectl cannot send X-Remote-*) and kubectl.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class AdapterSecurityTests {
    static let hpaUser = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"

    let pki: TemporaryDirectory
    let apiServer: FakeAPIServer
    let apiPort: Int
    let exporter: FakeExporter
    let adapter: ManagedProcess
    let port: Int
    let sampleTime = Date().timeIntervalSince1970.rounded(.down)

    init() throws {
        pki = TemporaryDirectory(prefix: "accel-pki")
        let (_, err, status) = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, pki.path])
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }

        var node = FakeNode.reference
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
        apiServer = try FakeAPIServer(seed: seed)
        apiPort = apiServer.port
        let kubeconfig = try apiServer.kubeconfig(user: "adapter", token: "adapter-token", namespace: "accel-metrics")

        port = try freePort()
        adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "\(port)", "--bind-address", "127.0.0.1",
                "--tls-cert-file", pki.url("server.pem").path,
                "--tls-private-key-file", pki.url("server.key").path,
                "--requestheader-client-ca-file", pki.url("proxy-ca.pem").path,
                "--requestheader-allowed-names", "front-proxy-client",
                "--client-ca-file", pki.url("client-ca.pem").path,
                "--kubeconfig", kubeconfig.path, "--exporters.service", "accel-metrics/accel-exporter",
                "--metric-resolution", "250ms", "--metrics-max-age", "5m",
            ])
        try adapter.waitFor("accel-metrics-adapter started")
    }

    deinit {
        adapter.stop()
        apiServer.stop()
    }

    static let podsPath = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization?labelSelector=app%3Dinfer"

    func curl(_ path: String, cert: String? = nil, headers: [String] = [], token: String? = nil) throws
        -> (status: Int, json: [String: Any]?)
    {
        var arguments = ["-s", "-m", "10", "-w", "\n%{http_code}", "--cacert", pki.url("ca.pem").path]
        if let cert {
            arguments += ["--cert", pki.url("\(cert).pem").path, "--key", pki.url("\(cert).key").path]
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
        var answer: (status: Int, json: [String: Any]?) = (0, nil)
        _ = try eventually(timeout: 20, pollInterval: 0.2) {
            answer = try curl(Self.podsPath, cert: "proxy-client", headers: proxyHeaders)
            return answer.status == 200 && (answer.json?["items"] as? [[String: Any]])?.count == 2
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
        var status = 0
        _ = try eventually(timeout: 20, pollInterval: 0.2) {
            status = try curl(Self.podsPath, token: "hpa-token").status
            return status == 200
        }
        #expect(status == 200)
        #expect(try curl(Self.podsPath, token: "wrong").status == 401)
        // kubectl over TLS, verifying the serving certificate, with the token.
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        let (out, err, code) = try runProgram(kubectl, [
            "--server", "https://127.0.0.1:\(port)", "--certificate-authority", pki.url("ca.pem").path,
            "--token", "hpa-token", "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization",
        ])
        #expect(code == 0, "\(err)")
        #expect(out.contains("\"MetricValueList\""))
    }
}
