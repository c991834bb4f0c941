import AccelMetricsTesting
import ConfigYAML
@testable import Exporter
@testable import HTTPAccess
import Foundation
import Synchronization
import Testing

@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct WebConfigEndToEndTests {
    static func bcrypt(_ password: String) throws -> String {
        let (out, _, _) = try runProgramCapturingBytes("/usr/bin/python3", ["-W", "ignore", "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))", password])
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A fresh folder in the temp folder (the caller removes it), with the test PKI in `pki/` when asked.
    static func workspace(pki: Bool) throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("accel-web-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if pki {
            _ = try runProgramCapturingBytes("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path,
                                      dir.appendingPathComponent("pki").path])
        }
        return dir
    }

    /// The real exporter on the fake NVML's H100 node, with `--web.config.file webConfig`.
    static func exporter(webConfig: URL) throws -> ExporterProcess {
        try ExporterProcess(
            tree: nil,
            arguments: ["--web.config.file", webConfig.path, "--nvml.library", PackagePaths.product("libFakeNVML.so"),
                        "--no-collector.amdgpu", "--no-collector.hwmon"],
            environment: ["FAKE_NVML_CONFIG": PackagePaths.file("Tests/Fixtures/nvml/h100x8.nvml").path])
    }

    @Test func httpsBasicAuthClientCertificatesAndReload() throws {
        let dir = try Self.workspace(pki: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pki = dir.appendingPathComponent("pki")
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
        let exporter = try Self.exporter(webConfig: config)
        defer { exporter.stop() }
        let url = "https://127.0.0.1:\(exporter.port)/metrics"
        func curl(_ extra: [String]) throws -> (status: Int, headers: String, body: String) {
            let (out, _, _) = try runProgramCapturingBytes("/usr/bin/curl", ["-s", "-m", "10", "-D", "-", "--cacert", pki.appendingPathComponent("ca.pem").path] + extra + [url])
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
        var withoutCert = 0
        _ = try eventually(timeout: 20, pollInterval: 0.3) {
            withoutCert = try curl([]).status
            return withoutCert == 401 && exporter.log.contains("web configuration reloaded")
        }
        #expect(exporter.log.contains("web configuration reloaded"))
        #expect(withoutCert == 401)
        let alice = try curl(["--cert", pki.appendingPathComponent("alice.pem").path, "--key", pki.appendingPathComponent("alice.key").path])
        #expect(alice.status == 200)
        let rogue = try curl(["--cert", pki.appendingPathComponent("rogue.pem").path, "--key", pki.appendingPathComponent("rogue.key").path])
        #expect(rogue.status == 403 || rogue.status == 0)

        // A broken file is refused; the last good one keeps serving.
        try "tls_server_config: {client_auth_type: Sometimes}\n".write(to: config, atomically: false, encoding: .utf8)
        _ = eventually(timeout: 20, pollInterval: 0.3) { exporter.log.contains("web configuration rejected") }
        #expect(exporter.log.contains("web configuration rejected"))
        #expect(try curl(["--cert", pki.appendingPathComponent("alice.pem").path, "--key", pki.appendingPathComponent("alice.key").path]).status == 200)
    }

    /// Issue 15, case 7, each confirmed against the real binary:
    /// - bcrypt ran on every HTTP thread at once and failed passwords were never throttled: now an address that
    ///   keeps failing gets 429 (even with the right password) while another address logs in, at most one bcrypt
    ///   runs at a time, and the health paths answer without credentials throughout;
    /// - `tls_server_config` added to a running exporter's file was ignored while the log said "reloaded";
    /// - certificate files named in the file were never re-read;
    /// - `RequireAnyClientCert` without `client_ca_file` never asked the client for a certificate.
    @Test func throttledLoginsTLSAddedAtRuntimeRotatedFilesAndAnyClientCert() throws {
        let dir = try Self.workspace(pki: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pki = dir.appendingPathComponent("pki")
        func pkiPath(_ name: String) -> String { pki.appendingPathComponent(name).path }
        // The serving pair under names the test rotates.
        try FileManager.default.copyItem(atPath: pkiPath("server.pem"), toPath: dir.appendingPathComponent("tls.crt").path)
        try FileManager.default.copyItem(atPath: pkiPath("server.key"), toPath: dir.appendingPathComponent("tls.key").path)
        let hash = try Self.bcrypt("s3cret")
        let config = dir.appendingPathComponent("web.yml")
        try "basic_auth_users:\n  prometheus: \(hash)\n".write(to: config, atomically: false, encoding: .utf8)
        let exporter = try Self.exporter(webConfig: config)
        defer { exporter.stop() }
        let port = exporter.port

        // Logins from 127.0.0.1 fail; eight more arrive at once. Each is 401 (its bcrypt ran and failed), 503 (another
        // run was in progress) or 429 (the address is throttled); no more than the allowed five failures ever ran.
        for _ in 0..<3 {
            let (out, _, _) = try runProgramCapturingBytes("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-u", "prometheus:wrong",
                                                        "http://127.0.0.1:\(port)/metrics"])
            #expect(String(decoding: out, as: UTF8.self) == "401")
        }
        let burst = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let out = (try? runProgramCapturingBytes("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-u", "prometheus:wrong",
                                                  "http://127.0.0.1:\(port)/metrics"]))?.0 ?? Data()
            burst.withLock { $0.append(String(decoding: out, as: UTF8.self)) }
        }
        let codes = burst.withLock { $0 }
        #expect(codes.count == 8)
        #expect(codes.allSatisfy { ["401", "429", "503"].contains($0) }, "\(codes)")
        #expect(codes.filter { $0 == "401" }.count <= 2, "\(codes)")
        #expect(codes.contains("429"), "\(codes)")
        func status(_ extra: [String], _ url: String) throws -> String {
            let (out, _, _) = try runProgramCapturingBytes("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"] + extra + [url])
            return String(decoding: out, as: UTF8.self)
        }
        // Throttled: even the right password from that address, without a bcrypt run.
        #expect(try status(["-u", "prometheus:s3cret"], "http://127.0.0.1:\(port)/metrics") == "429")
        // Another address logs in; the health paths need no credentials.
        #expect(try status(["--interface", "127.0.0.2", "-u", "prometheus:s3cret"], "http://127.0.0.1:\(port)/metrics") == "200")
        #expect(try status([], "http://127.0.0.1:\(port)/healthz") == "200")
        #expect(try status([], "http://127.0.0.1:\(port)/metrics").hasPrefix("4"))

        // TLS added to the running exporter's file: served on the same port.
        func waitFor(_ what: String, _ condition: () throws -> Bool) throws {
            if try eventually(timeout: 25, pollInterval: 0.3, condition) { return }
            Issue.record("timed out waiting for \(what); log: \(exporter.log.suffix(1500))")
        }
        let https = "https://127.0.0.1:\(port)/metrics"
        let trust = ["--cacert", pkiPath("ca.pem"), "--interface", "127.0.0.2", "-u", "prometheus:s3cret"]
        try """
            tls_server_config: {cert_file: tls.crt, key_file: tls.key}
            basic_auth_users:
              prometheus: \(hash)
            """.write(to: config, atomically: false, encoding: .utf8)
        try waitFor("HTTPS") { try status(trust, https) == "200" }
        #expect(exporter.log.contains("tls=on") || exporter.log.contains("\"tls\":\"on\""))
        func subject() throws -> String {
            let (out, _, _) = try runProgramCapturingBytes("/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(port) </dev/null 2>/dev/null | openssl x509 -noout -subject"])
            return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try subject() == "subject=CN = localhost")

        // The certificate files are rewritten; web.yml is not touched.
        try FileManager.default.removeItem(atPath: dir.appendingPathComponent("tls.crt").path)
        try FileManager.default.removeItem(atPath: dir.appendingPathComponent("tls.key").path)
        try FileManager.default.copyItem(atPath: pkiPath("server2.pem"), toPath: dir.appendingPathComponent("tls.crt").path)
        try FileManager.default.copyItem(atPath: pkiPath("server2.key"), toPath: dir.appendingPathComponent("tls.key").path)
        try waitFor("the rotated certificate") { try subject() == "subject=CN = localhost-rotated" }

        // RequireAnyClientCert without client_ca_file: any certificate will do, none will not.
        try """
            tls_server_config: {cert_file: tls.crt, key_file: tls.key, client_auth_type: RequireAnyClientCert}
            """.write(to: config, atomically: false, encoding: .utf8)
        let rogue = ["--cacert", pkiPath("ca.pem"), "--cert", pkiPath("rogue.pem"), "--key", pkiPath("rogue.key")]
        try waitFor("a client certificate to be asked for") { try status(rogue, https) == "200" }
        #expect(try status(["--cacert", pkiPath("ca.pem")], https) == "401")
    }

    @Test func aBrokenFileStopsTheStartWithOneLine() throws {
        let dir = try Self.workspace(pki: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("web.yml")
        try "basic_auth_users: {alice: plain}\n".write(to: config, atomically: false, encoding: .utf8)
        let (_, err, status) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"),
                                       ["--web.config.file", config.path, "--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia",
                                        "--no-collector.kubelet"])
        #expect(status == 1)
        #expect(err == "accel-exporter: --web.config.file: basic_auth_users.alice: is not a bcrypt hash ($2y$…)\n")
    }
}
