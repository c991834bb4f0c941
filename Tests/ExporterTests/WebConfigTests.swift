import ConfigYAML
@testable import Exporter
import Foundation
import Testing

@Suite struct WebConfigParsingTests {
    func parse(_ yaml: String) throws -> WebConfig {
        try WebConfig.parse(try YAMLDocument.parse(Array(yaml.utf8)), directory: "/nonexistent")
    }

    @Test(arguments: [
        ("tls_server_config: {cert_file: a}", "tls_server_config.cert_file: cannot read /nonexistent/a"),
        ("tls_server_config: {client_auth_type: Sometimes}", "tls_server_config.client_auth_type: \"Sometimes\" is not one of"),
        ("tls_server_config: {cipher_suites: [x]}", "tls_server_config.cipher_suites: is not supported"),
        ("tls_server_config: {}", "tls_server_config: cert_file and key_file are both required"),
        ("basic_auth_users: {alice: plaintext}", "basic_auth_users.alice: is not a bcrypt hash"),
        ("http_server_config: {gzip: true}", "http_server_config.gzip: unknown key"),
        ("tls_config: {}", "tls_config: unknown key"),
    ])
    func errorsNameTheirKey(yaml: String, message: String) {
        do {
            _ = try parse(yaml)
            Issue.record("accepted \(yaml)")
        } catch {
            #expect("\(error)".hasPrefix(message), "\(error)")
        }
    }

    @Test func usersAndHeaders() throws {
        let config = try parse("""
            http_server_config:
              headers: {X-Frame-Options: deny, Strict-Transport-Security: max-age=31536000}
            basic_auth_users:
              prometheus: $2y$10$abcdefghijklmnopqrstuuXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX
            """)
        #expect(config.users.keys.sorted() == ["prometheus"])
        #expect(config.headers.map(\.name) == ["X-Frame-Options", "Strict-Transport-Security"])
        #expect(config.tls == nil)
    }

    @Test func constantTimeComparison() {
        #expect(WebAccess.constantTimeEquals("abc", "abc"))
        #expect(!WebAccess.constantTimeEquals("abc", "abd"))
        #expect(!WebAccess.constantTimeEquals("abc", "abcd"))
    }
}

/// The real exporter with --web.config.file: HTTPS, basic auth with a bcrypt hash made by Python's crypt (libxcrypt),
/// client certificates from the test PKI, and a reload of the file while it runs.
@Suite(.serialized) struct WebConfigEndToEndTests {
    static func bcrypt(_ password: String) throws -> String {
        let (out, _, _) = try run("/usr/bin/python3", ["-W", "ignore", "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))", password])
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func httpsBasicAuthClientCertificatesAndReload() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("accel-web-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pki = dir.appendingPathComponent("pki")
        _ = try run("/bin/bash", [ExporterProcess.packageRoot.appendingPathComponent("scripts/test-pki.sh").path, pki.path])
        let hash = try Self.bcrypt("s3cret")
        #expect(hash.hasPrefix("$2b$"))
        let config = dir.appendingPathComponent("web.yml")
        try """
            tls_server_config:
              cert_file: pki/server.pem
              key_file: pki/server.key
            http_server_config:
              headers: {X-Content-Type-Options: nosniff}
            basic_auth_users:
              prometheus: \(hash)
            """.write(to: config, atomically: false, encoding: .utf8)
        let root = ExporterProcess.packageRoot.path
        let exporter = try ExporterProcess(
            tree: nil,
            arguments: ["--web.config.file", config.path, "--nvml.library", ExporterProcess.binary("libFakeNVML.so"),
                        "--no-collector.amdgpu", "--no-collector.hwmon"],
            environment: ["FAKE_NVML_CONFIG": "\(root)/Tests/Fixtures/nvml/h100x8.nvml"])
        defer { exporter.stop() }
        let url = "https://127.0.0.1:\(exporter.port)/metrics"
        func curl(_ extra: [String]) throws -> (status: Int, headers: String, body: String) {
            let (out, _, _) = try run("/usr/bin/curl", ["-s", "-m", "10", "-D", "-", "--cacert", pki.appendingPathComponent("ca.pem").path] + extra + [url])
            let text = String(decoding: out, as: UTF8.self)
            let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
            return (status, text.components(separatedBy: "\r\n\r\n").first ?? "", text)
        }
        let anonymous = try curl([])
        #expect(anonymous.status == 401)
        #expect(anonymous.headers.contains("WWW-Authenticate: Basic"))
        #expect(try curl(["-u", "prometheus:wrong"]).status == 401)
        #expect(try curl(["-u", "nobody:s3cret"]).status == 401)
        let good = try curl(["-u", "prometheus:s3cret"])
        #expect(good.status == 200)
        #expect(good.headers.contains("X-Content-Type-Options: nosniff"))
        #expect(good.body.contains("accelerator_up{"))
        #expect(try curl(["-u", "prometheus:s3cret"]).status == 200)  // the cached verification

        // Now require client certificates from the client CA; the running exporter picks the file up.
        try """
            tls_server_config:
              cert_file: pki/server.pem
              key_file: pki/server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: pki/client-ca.pem
            """.write(to: config, atomically: false, encoding: .utf8)
        let deadline = Date().addingTimeInterval(20)
        var withoutCert = 0
        while Date() < deadline {
            withoutCert = try curl([]).status
            if withoutCert == 401, exporter.log.contains("web configuration reloaded") { break }
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(exporter.log.contains("web configuration reloaded"))
        #expect(withoutCert == 401)
        let alice = try curl(["--cert", pki.appendingPathComponent("alice.pem").path, "--key", pki.appendingPathComponent("alice.key").path])
        #expect(alice.status == 200)
        let rogue = try curl(["--cert", pki.appendingPathComponent("rogue.pem").path, "--key", pki.appendingPathComponent("rogue.key").path])
        #expect(rogue.status == 403 || rogue.status == 0)

        // A broken file is refused; the last good one keeps serving.
        try "tls_server_config: {client_auth_type: Sometimes}\n".write(to: config, atomically: false, encoding: .utf8)
        let brokenDeadline = Date().addingTimeInterval(20)
        while Date() < brokenDeadline && !exporter.log.contains("web configuration rejected") { Thread.sleep(forTimeInterval: 0.3) }
        #expect(exporter.log.contains("web configuration rejected"))
        #expect(try curl(["--cert", pki.appendingPathComponent("alice.pem").path, "--key", pki.appendingPathComponent("alice.key").path]).status == 200)
    }

    @Test func aBrokenFileStopsTheStartWithOneLine() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("accel-web-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("web.yml")
        try "basic_auth_users: {alice: plain}\n".write(to: config, atomically: false, encoding: .utf8)
        let (_, err, status) = try run(ExporterProcess.binary("accel-exporter"),
                                       ["--web.config.file", config.path, "--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia",
                                        "--no-collector.kubelet"])
        #expect(status == 1)
        #expect(err == "accel-exporter: --web.config.file: basic_auth_users.alice: is not a bcrypt hash ($2y$…)\n")
    }
}
