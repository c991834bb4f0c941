import AccelMetricsTesting
import Foundation
import HTTPServer
import Testing

/// In a cluster without certificate files: the first adapter creates the shared serving-certificate Secret and puts
/// its CA into the APIServices' caBundle; a second adapter serves the same certificate. The front proxy's settings
/// come from the extension-apiserver-authentication ConfigMap (no requestheader flags). And the exporters are
/// reached over HTTPS with basic auth (the exporter's --web.config.file).
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class AdapterClusterBootstrapTests {
    let pki: TemporaryDirectory
    let apiServer: FakeAPIServer
    let apiPort: Int
    let kubeconfig: URL

    init() throws {
        pki = TemporaryDirectory(prefix: "accel-pki")
        let (_, err, status) = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, pki.path])
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }
        let proxyCA = try String(contentsOf: pki.url("proxy-ca.pem"), encoding: .utf8)
        func apiService(_ name: String, _ group: String, _ version: String) -> [String: Any] {
            ["apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": ["name": name],
             "spec": ["group": group, "version": version, "service": ["name": "accel-metrics-adapter", "namespace": "accel-metrics"]]]
        }
        let seed: [String: Any] = [
            "objects": [
                apiService("v1beta2.custom.metrics.k8s.io", "custom.metrics.k8s.io", "v1beta2"),
                apiService("v1beta1.custom.metrics.k8s.io", "custom.metrics.k8s.io", "v1beta1"),
                [
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": ["namespace": "kube-system", "name": "extension-apiserver-authentication"],
                    "data": [
                        "requestheader-client-ca-file": proxyCA, "requestheader-allowed-names": "[\"front-proxy-client\"]",
                        "requestheader-username-headers": "[\"X-Remote-User\"]", "requestheader-group-headers": "[\"X-Remote-Group\"]",
                        "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
                    ],
                ],
            ],
            "allow": [["user": "hpa"]],
        ]
        apiServer = try FakeAPIServer(seed: seed)
        apiPort = apiServer.port
        kubeconfig = try apiServer.kubeconfig(user: "adapter", token: "adapter-token", namespace: "accel-metrics")
    }

    deinit {
        apiServer.stop()
    }

    func api(_ path: String) throws -> [String: Any] {
        let (out, _, _) = try runProgram("/usr/bin/curl", ["-s", "http://127.0.0.1:\(apiPort)\(path)"])
        return (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    func startAdapter(_ extra: [String]) throws -> (ManagedProcess, Int) {
        let port = try freePort()
        let adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            ["--secure-port", "\(port)", "--bind-address", "127.0.0.1", "--kubeconfig", kubeconfig.path,
             "--metric-resolution", "250ms"] + extra)
        try adapter.waitFor("accel-metrics-adapter started")
        return (adapter, port)
    }

    @Test func sharedSecretCABundleAndTheClusterFrontProxySettings() throws {
        // An exporter behind HTTPS and basic auth, reached with --exporters.ca-file and a password file.
        let hash: String = try {
            let (out, _, _) = try runProgram("/usr/bin/python3", ["-W", "ignore", "-c",
                "import crypt; print(crypt.crypt('pw', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))"])
            return out.trimmingCharacters(in: .whitespacesAndNewlines)
        }()
        let web = pki.url("web.yml")
        try "tls_server_config: {cert_file: server.pem, key_file: server.key}\nbasic_auth_users: {adapter: \(hash)}\n"
            .write(to: web, atomically: false, encoding: .utf8)
        let password = pki.url("password")
        try "pw\n".write(to: password, atomically: false, encoding: .utf8)
        let root = PackagePaths.root.path
        let exporter = try ManagedProcess(
            PackagePaths.product("accel-exporter"),
            ["--web.listen-address", "127.0.0.1:0", "--web.config.file", web.path, "--nvml.library", PackagePaths.product("libFakeNVML.so"),
             "--no-collector.amdgpu", "--no-collector.hwmon", "--kubernetes.node-name", "gpu-node-1"],
            environment: ["FAKE_NVML_CONFIG": "\(root)/Tests/Fixtures/nvml/h100x8.nvml"])
        defer { exporter.stop() }
        let exporterAddress = "127.0.0.1:" + (try exporter.waitFor(#"msg=listening address=127\.0\.0\.1:(\d+)"#))

        let exporterFlags = ["--exporters.targets", exporterAddress, "--exporters.scheme", "https",
                             "--exporters.ca-file", pki.url("ca.pem").path,
                             "--exporters.username", "adapter", "--exporters.password-file", password.path]
        let (first, port) = try startAdapter(exporterFlags)
        defer { first.stop() }
        // The Secret exists, and the APIServices carry its CA.
        let secret = try api("/api/v1/namespaces/accel-metrics/secrets/accel-metrics-adapter-serving-cert")
        let data = secret["data"] as? [String: String] ?? [:]
        let ca = try #require(data["ca.crt"].flatMap { Data(base64Encoded: $0) })
        var bundles: [String?] = []
        _ = eventually(timeout: 10, pollInterval: 0.1) {
            bundles = ["v1beta2", "v1beta1"].map { version in
                (try? api("/apis/apiregistration.k8s.io/v1/apiservices/\(version).custom.metrics.k8s.io"))
                    .flatMap { ($0["spec"] as? [String: Any])?["caBundle"] as? String }
            }
            return bundles.allSatisfy { $0 == data["ca.crt"] }
        }
        #expect(bundles == [data["ca.crt"], data["ca.crt"]])
        let caFile = pki.url("served-ca.pem")
        try ca.write(to: caFile)

        // The served certificate verifies against that CA for the Service's name; the front proxy (settings from
        // the ConfigMap) gets through, and values come from the HTTPS exporter.
        let path = "/apis/custom.metrics.k8s.io/v1beta2/nodes/gpu-node-1/gpu_power_watts"
        func ask(_ port: Int) throws -> (Int, String) {
            let (out, _, _) = try runProgram("/usr/bin/curl", [
                "-s", "-m", "10", "-w", "\n%{http_code}", "--cacert", caFile.path,
                "--resolve", "accel-metrics-adapter.accel-metrics.svc:\(port):127.0.0.1",
                "--cert", pki.url("proxy-client.pem").path, "--key", pki.url("proxy-client.key").path,
                "-H", "X-Remote-User: hpa", "https://accel-metrics-adapter.accel-metrics.svc:\(port)\(path)",
            ])
            let lines = out.split(separator: "\n")
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        var answer = (0, "")
        _ = try eventually(timeout: 20, pollInterval: 0.2) {
            answer = try ask(port)
            return answer.0 == 200
        }
        #expect(answer.0 == 200, "\(answer.1)\n\(first.log.suffix(1500))")
        #expect(answer.1.contains("\"gpu-node-1\""))

        // A second replica reads the same Secret: the same certificate, trusted by the same caBundle.
        let (second, secondPort) = try startAdapter(exporterFlags)
        defer { second.stop() }
        #expect(!second.log.contains("created the serving certificate Secret"))
        // Ready once the ConfigMap's front-proxy settings are in; then the proxy gets through.
        var ready = 0
        var status = 0
        _ = try eventually(timeout: 15, pollInterval: 0.2) {
            let (out, _, _) = try runProgram("/usr/bin/curl", ["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(secondPort)/readyz"])
            ready = Int(out) ?? 0
            status = try ask(secondPort).0
            return ready == 200 && status == 200
        }
        #expect(ready == 200)
        #expect(status == 200)
        let secretAgain = try api("/api/v1/namespaces/accel-metrics/secrets/accel-metrics-adapter-serving-cert")
        #expect((secretAgain["data"] as? [String: String])?["tls.crt"] == data["tls.crt"])
    }
}
