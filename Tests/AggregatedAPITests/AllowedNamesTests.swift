import AccelMetricsTesting
@testable import AdapterStore
@testable import AggregatedAPI
import Foundation
import Testing

/// Issue 15, case 7: allowed names for the front proxy that cannot be read never mean "any name".
@Suite struct AllowedNamesTests {
    @Test func anUnreadableConfigMapEntryAllowsNoName() {
        let settings = { (value: String?) in
            AuthenticationConfigWatcher.settings(value.map { ["requestheader-allowed-names": $0] } ?? [:]).allowedNames
        }
        #expect(settings(#"["front-proxy-client"]"#) == ["front-proxy-client"])
        #expect(settings(nil) == [])
        #expect(settings("[]") == [])
        for broken in ["front-proxy-client", #"["front-proxy-client""#, "{}", "[1]"] {
            #expect(settings(broken) == AuthenticationConfigWatcher.noAllowedName, "\(broken)")
        }
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func aFlagNamingNoNameStopsTheAdapter() throws {
        let pki = TemporaryDirectory(prefix: "accel-names")
        defer { pki.remove() }
        let (_, pkiErr, pkiStatus) = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, pki.path])
        try #require(pkiStatus == 0, "\(pkiErr)")
        let (_, err, status) = try runProgram(
            PackagePaths.product("accel-metrics-adapter"),
            ["--secure-port", "\(try freePort())", "--bind-address", "127.0.0.1", "--exporters.targets", "127.0.0.1:1",
             "--tls-cert-file", pki.url("server.pem").path, "--tls-private-key-file", pki.url("server.key").path,
             "--requestheader-client-ca-file", pki.url("proxy-ca.pem").path, "--requestheader-allowed-names", " , ", "--authorization-mode", "AlwaysAllow"],
            timeout: 15)
        #expect(status != 0)
        #expect(err.contains("--requestheader-allowed-names"), "\(err)")
    }
}
