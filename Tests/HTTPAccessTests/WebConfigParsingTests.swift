import ConfigYAML
@testable import HTTPAccess
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

    /// Issue 15, case 7: failed passwords are throttled per address, and bcrypt runs are bounded in number.
    @Test func loginGuardThrottlesFailuresAndBoundsRuns() {
        let guarded = LoginGuard(maxConcurrent: 1, allowedFailures: 3, window: 60, maxAddresses: 2)
        #expect(guarded.admit("a", now: 0) == .admitted)
        #expect(guarded.admit("b", now: 0) == .busy)  // one run at a time
        guarded.finished()
        for second in 0..<3 {
            #expect(guarded.admit("a", now: Double(second)) == .admitted)
            guarded.failed("a", now: Double(second))
            guarded.finished()
        }
        #expect(guarded.admit("a", now: 10) == .throttled(retryAfter: 50))
        #expect(guarded.admit("b", now: 10) == .admitted)  // another address is not held back
        guarded.finished()
        #expect(guarded.admit("a", now: 60) == .admitted)  // the window since the first failure passed
        guarded.finished()
        // A success clears the count.
        guarded.failed("c", now: 61)
        guarded.failed("c", now: 61)
        guarded.succeeded("c")
        guarded.failed("c", now: 62)
        #expect(guarded.admit("c", now: 62) == .admitted)
        guarded.finished()
        // The table is bounded: a third address evicts rather than grows it.
        guarded.failed("d", now: 200)
        guarded.failed("e", now: 200)
        guarded.failed("f", now: 200)
        #expect(guarded.admit("f", now: 200) == .admitted)
        guarded.finished()
    }

    @Test func constantTimeComparison() {
        #expect(WebAccess.constantTimeEquals("abc", "abc"))
        #expect(!WebAccess.constantTimeEquals("abc", "abd"))
        #expect(!WebAccess.constantTimeEquals("abc", "abcd"))
    }
}

/// The real exporter with --web.config.file: HTTPS, basic auth with a bcrypt hash made by Python's crypt (libxcrypt),
/// client certificates from the test PKI, and a reload of the file while it runs.
