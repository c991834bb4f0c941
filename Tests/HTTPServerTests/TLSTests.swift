import AccelMetricsTesting
import Foundation
import HTTPServer
import Logging
import Synchronization
import Testing

/// Test certificates made by scripts/test-pki.sh into a temporary directory.
final class TestPKI: Sendable {
    let directory: TemporaryDirectory

    init() throws {
        directory = TemporaryDirectory(prefix: "accel-pki")
        let (_, err, status) = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, directory.path], timeout: 30)
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }
    }

    func path(_ name: String) -> String { directory.path(name) }
    func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: directory.url(name))) }

    func serverTLS(_ name: String = "server", clientCAs: [String] = []) throws -> HTTPServer.TLSConfiguration {
        HTTPServer.TLSConfiguration(
            certificateChainPEM: try bytes("\(name).pem"), privateKeyPEM: try bytes("\(name).key"),
            clientCAsPEM: clientCAs.isEmpty ? nil : try clientCAs.flatMap { try bytes("\($0).pem") })
    }
}

@Suite(.serialized) struct TLSTests {
    /// Answers with the CN/O of the client certificate as verified against `authority`, or why not.
    static func echoIdentity(_ authority: CertificateAuthority?) -> @Sendable (HTTPRequest) -> HTTPResponse {
        { request in
            guard let chain = request.peerCertificates else { return .text("no certificate") }
            guard let authority else { return .text("certificate, not checked") }
            do {
                let identity = try authority.verify(chain: chain)
                return .text("CN=\(identity.commonName) O=\(identity.organizations.joined(separator: ","))")
            } catch {
                return .text("rejected: \(error)", status: 403)
            }
        }
    }

    func curl(_ port: Int, _ pki: TestPKI, cert: String? = nil, extra: [String] = []) throws -> (String, Int32) {
        var arguments = ["-s", "-m", "10", "--cacert", pki.path("ca.pem")]
        if let cert { arguments += ["--cert", pki.path("\(cert).pem"), "--key", pki.path("\(cert).key")] }
        arguments += extra + ["https://127.0.0.1:\(port)/"]
        let (out, _, status) = try runProgram("/usr/bin/curl", arguments)
        return (out, status)
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func servesHTTPSAndReadsVerifiedClientCertificates() throws {
        let pki = try TestPKI()
        let proxyCA = try CertificateAuthority(pem: try pki.bytes("proxy-ca.pem"))
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: try pki.serverTLS(clientCAs: ["proxy-ca", "client-ca"])),
            logger: CapturedLog().logger(), handler: Self.echoIdentity(proxyCA))
        try server.start()
        defer { server.stop() }

        #expect(try curl(server.port, pki).0 == "no certificate")
        #expect(try curl(server.port, pki, cert: "proxy-client").0 == "CN=front-proxy-client O=")
        let other = try curl(server.port, pki, cert: "alice").0
        #expect(other.hasPrefix("rejected:") && other.contains("issuer is unknown"), "\(other)")
        let rogue = try curl(server.port, pki, cert: "rogue").0
        #expect(rogue.hasPrefix("rejected:"))
        let expired = try curl(server.port, pki, cert: "expired").0
        #expect(expired.contains("expired"), "\(expired)")
        // Plain HTTP to the TLS port gets nothing useful.
        let (plain, _, _) = try runProgram("/usr/bin/curl", ["-s", "-m", "5", "http://127.0.0.1:\(server.port)/"])
        #expect(!plain.contains("certificate"))
    }

    /// Issue 15, case 7: only forward-secret AEAD suites. A client offering nothing but CBC with SHA-1, or static
    /// RSA key exchange, gets no handshake; a current client gets TLS 1.3, or ECDHE with GCM on TLS 1.2.
    @Test(.tags(.endToEnd), .endToEndEnabled) func onlyForwardSecretAEADSuites() throws {
        let pki = try TestPKI()
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: try pki.serverTLS()), logger: CapturedLog().logger(),
            handler: { _ in .text("ok") })
        try server.start()
        defer { server.stop() }
        func handshake(_ options: [String]) throws -> (ok: Bool, output: String) {
            let (out, err, status) = try runProgram(
                "/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", pki.path("ca.pem")] + options, timeout: 10)
            return (status == 0 && out.contains("Verify return code: 0"), out + err)
        }
        let cbc = try handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"])
        #expect(!cbc.ok, "\(cbc.output.suffix(600))")
        let staticRSA = try handshake(["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384"])
        #expect(!staticRSA.ok)
        let gcm = try handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        #expect(gcm.ok, "\(gcm.output.suffix(600))")
        #expect(gcm.output.contains("ECDHE-ECDSA-AES128-GCM-SHA256"))
        let tls13 = try handshake(["-tls1_3"])
        #expect(tls13.ok, "\(tls13.output.suffix(600))")
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func organizationsAndCommonNameFromTheClientCA() throws {
        let pki = try TestPKI()
        let clientCA = try CertificateAuthority(pem: try pki.bytes("client-ca.pem"))
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: try pki.serverTLS(clientCAs: ["client-ca"])),
            logger: CapturedLog().logger(), handler: Self.echoIdentity(clientCA))
        try server.start()
        defer { server.stop() }
        #expect(try curl(server.port, pki, cert: "alice").0 == "CN=alice O=dev,ops")
    }

    func servedSubject(_ port: Int) throws -> String {
        let (out, _, _) = try runProgram(
            "/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(port) </dev/null 2>/dev/null | openssl x509 -noout -subject"])
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func credentialsReloadWithoutARestartAndABadPairIsRefused() throws {
        let pki = try TestPKI()
        let logs = CapturedLog()
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: try pki.serverTLS()), logger: logs.logger(),
            handler: { _ in .text("ok") })
        try server.start()
        defer { server.stop() }
        let port = server.port
        #expect(try servedSubject(port) == "subject=CN = localhost")
        try server.reloadTLS(try pki.serverTLS("server2"), drainSeconds: 0.5)
        #expect(try servedSubject(port) == "subject=CN = localhost-rotated")
        #expect(server.port == port)
        #expect(try curl(port, pki).0 == "ok")

        let mismatched = HTTPServer.TLSConfiguration(
            certificateChainPEM: try pki.bytes("server.pem"), privateKeyPEM: try pki.bytes("mismatch.key"))
        let error = #expect(throws: HTTPServerError.self) { try server.reloadTLS(mismatched) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("do not load") == true)
        #expect(try servedSubject(port) == "subject=CN = localhost-rotated")
        // Reloads in a row, while requests keep coming.
        for name in ["server", "server2", "server"] {
            try server.reloadTLS(try pki.serverTLS(name), drainSeconds: 0.2)
            #expect(try curl(port, pki).0 == "ok")
        }
        Thread.sleep(forTimeInterval: 0.5)  // the retired daemons stop
        #expect(logs.contains("TLS credentials reloaded"))
    }

    /// Issue 15, case 7: `stop()` soon after a reload used to stop the retired daemon but not close the listen
    /// socket's duplicate it had handed back, so the port kept accepting connections nobody answered.
    @Test(.tags(.endToEnd), .endToEndEnabled) func stopSoonAfterAReloadStopsListening() throws {
        let pki = try TestPKI()
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: try pki.serverTLS()), logger: CapturedLog().logger(),
            handler: { _ in .text("ok") })
        try server.start()
        let port = server.port
        try server.reloadTLS(try pki.serverTLS("server2"), drainSeconds: 30)
        server.stop()
        #expect(throws: ClientError.self) { _ = try TestClient(port: port, timeout: 1) }
    }

    /// Issue 15, case 7: TLS added to (or removed from) a running server's configuration takes effect on the same
    /// socket, instead of being ignored.
    @Test(.tags(.endToEnd), .endToEndEnabled) func tlsTurnsOnAndOffWithoutARestart() throws {
        let pki = try TestPKI()
        let logs = CapturedLog()
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0), logger: logs.logger(), handler: { _ in .text("ok") })
        try server.start()
        defer { server.stop() }
        let port = server.port
        #expect(try request("GET", "/", port: port).status == 200)
        try server.reloadTLS(try pki.serverTLS(), drainSeconds: 0.2)
        #expect(server.currentTLS != nil)
        #expect(try curl(port, pki).0 == "ok")
        #expect(try servedSubject(port) == "subject=CN = localhost")
        try server.reloadTLS(nil, drainSeconds: 0.2)
        #expect(server.currentTLS == nil)
        #expect(try request("GET", "/", port: port).status == 200)
        #expect(logs.contains("TLS turned off"))
    }

    /// Issue 15, case 7: an empty CA list still asks the client for a certificate (naming no CA), so a handler
    /// can require one without a CA to verify it against (`RequireAnyClientCert` without `client_ca_file`).
    @Test(.tags(.endToEnd), .endToEndEnabled) func anEmptyCAListAsksForAnyCertificate() throws {
        let pki = try TestPKI()
        var tls = try pki.serverTLS()
        tls.clientCAsPEM = []
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: tls), logger: CapturedLog().logger(),
            handler: Self.echoIdentity(nil))
        try server.start()
        defer { server.stop() }
        #expect(try curl(server.port, pki, cert: "alice").0 == "certificate, not checked")
        #expect(try curl(server.port, pki, cert: "rogue").0 == "certificate, not checked")
        #expect(try curl(server.port, pki).0 == "no certificate")
        let (out, _, _) = try runProgram(
            "/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(server.port) -cert \(pki.path("alice.pem")) -key \(pki.path("alice.key")) </dev/null 2>&1"])
        #expect(out.contains("No client certificate CA names sent"), "\(out.prefix(800))")
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func aBadPairFailsTheStartWithAClearError() throws {
        let pki = try TestPKI()
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: HTTPServer.TLSConfiguration(
                certificateChainPEM: try pki.bytes("server.pem"), privateKeyPEM: Array("not a key".utf8))),
            logger: CapturedLog().logger(), handler: { _ in .text("ok") })
        let error = #expect(throws: HTTPServerError.self) { try server.start() }
        #expect(error?.code == .invalidConfiguration)
        #expect(!server.isRunning)
    }

    @Test func certificateAuthorityRefusesGarbage() {
        #expect(throws: HTTPServerError.self) { try CertificateAuthority(pem: Array("garbage".utf8)) }
        #expect(throws: HTTPServerError.self) { try CertificateAuthority(pem: []) }
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func generatedCertificatesServeAndVerify() throws {
        let generated = try GeneratedCertificates.generate(caName: "adapter-ca", hosts: ["localhost", "127.0.0.1", "svc.ns.svc"])
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, tls: .init(
                certificateChainPEM: generated.certificatePEM, privateKeyPEM: generated.keyPEM)),
            logger: CapturedLog().logger(), handler: { _ in .text("ok") })
        try server.start()
        defer { server.stop() }
        let directory = TemporaryDirectory(prefix: "accel-gen")
        defer { directory.remove() }
        let ca = directory.url("ca.pem")
        try Data(generated.caCertificatePEM).write(to: ca)
        // curl checks the chain and the IP SAN; openssl shows the names.
        let (out, _, status) = try runProgram("/usr/bin/curl", ["-s", "-m", "10", "--cacert", ca.path, "https://127.0.0.1:\(server.port)/"])
        #expect(status == 0)
        #expect(out == "ok")
        let cert = directory.url("cert.pem")
        try Data(generated.certificatePEM).write(to: cert)
        let (text, _, _) = try runProgram("/usr/bin/openssl", ["x509", "-in", cert.path, "-noout", "-ext", "subjectAltName,extendedKeyUsage"])
        #expect(text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1") && text.contains("DNS:svc.ns.svc"))
        #expect(text.contains("TLS Web Server Authentication"))
        // A second generation is a different CA.
        let other = try GeneratedCertificates.generate(caName: "adapter-ca", hosts: ["localhost"])
        #expect(other.caCertificatePEM != generated.caCertificatePEM)
    }
}
