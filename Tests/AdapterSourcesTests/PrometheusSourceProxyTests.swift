import AccelMetricsTesting
import AdapterStore
@testable import AdapterSources
import AsyncHTTPClient
import CurlHTTP
import Logging
import Testing

/// The Prometheus source behind a forward proxy: the proxy URL as AsyncHTTPClient takes it, and the queries through
/// Debian's tinyproxy to a scripted Prometheus.
@Suite struct PrometheusSourceProxyTests {
    /// A Prometheus that answers every query with an empty vector, one connection each.
    static func prometheus() throws -> ScriptedPeer {
        let body = #"{"status":"success","data":{"resultType":"vector","result":[]}}"#
        return try ScriptedPeer([
            .send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"),
        ])
    }

    /// One refresh of a source with `settings`, logging into `log`, then its shutdown.
    static func refreshOnce(_ settings: PrometheusSettings, _ log: CapturedLog) async throws {
        let source = try PrometheusSource(
            store: MetricStore(maxAgeSeconds: 60), catalog: MetricCatalog(MetricDefinition.builtIn), metrics: AdapterMetrics(),
            settings: settings, logger: log.logger())
        await source.refresh()
        await source.shutdown()
    }

    @Test func aProxyURLBecomesAsyncHTTPClientsProxy() throws {
        let plain = try PrometheusSource.clientProxy("http://proxy.corp:3128")
        #expect(plain.host == "proxy.corp" && plain.port == 3128 && plain.authorization == nil)
        // The user information is percent-decoded into basic authorization.
        let authorized = try PrometheusSource.clientProxy("http://svc%40corp:p%3Ass@proxy.corp:3128")
        #expect(authorized.authorization == .basic(username: "svc@corp", password: "p:ss"))
        let socks = try PrometheusSource.clientProxy("socks5://[fd00::1]:1080")
        #expect(socks.host == "fd00::1" && socks.port == 1080)
        // What AsyncHTTPClient cannot do is refused at the start, with the reason and without the password.
        for refused in ["https://proxy.corp:3128", "socks5://user:secret@proxy.corp:1080"] {
            #expect {
                _ = try PrometheusSource.clientProxy(refused)
            } throws: { error in
                let text = "\(error)"
                return (error as? AdapterError)?.code == .invalidConfiguration && !text.contains("secret") && text.contains("proxy")
            }
        }
    }

    /// Basic authorization from the proxy URL reaches tinyproxy; without it the queries fail as a source failure.
    @Test(.tags(.endToEnd), .endToEndEnabled, arguments: [("svc:p-ss.w_1", true), ("svc:wrong", false)])
    func anAuthenticatingProxy(userInfo: String, accepted: Bool) async throws {
        let prometheus = try Self.prometheus()
        defer { prometheus.close() }
        let tinyproxy = try Tinyproxy(basicAuth: ("svc", "p-ss.w_1"))
        defer { tinyproxy.stop() }
        var settings = PrometheusSettings(url: "http://127.0.0.1:\(prometheus.port)")
        settings.proxy = HTTPProxy(all: "http://\(userInfo)@127.0.0.1:\(tinyproxy.port)")
        settings.timeoutSeconds = 2
        let log = CapturedLog()
        try await Self.refreshOnce(settings, log)
        #expect(log.contains("Prometheus query failed") != accepted, "\(log.all)")
        #expect(prometheus.requests.isEmpty != accepted)
        #expect(!log.all.contains { "\($0)".contains("wrong") }, "the password is in the log")
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func queriesGoThroughARealProxy() async throws {
        let prometheus = try Self.prometheus()
        defer { prometheus.close() }
        let tinyproxy = try Tinyproxy()
        defer { tinyproxy.stop() }
        var settings = PrometheusSettings(url: "http://127.0.0.1:\(prometheus.port)")
        // Loopback goes through it only when told so (a kubeconfig's proxy-url does; HTTP_PROXY would not).
        settings.proxy = HTTPProxy(all: tinyproxy.url)
        let log = CapturedLog()
        try await Self.refreshOnce(settings, log)
        #expect(log.contains("Prometheus queries go through a proxy"))
        #expect(!log.contains("Prometheus query failed"), "\(log.all)")
        #expect(!prometheus.requests.isEmpty && prometheus.requests.allSatisfy { $0.hasPrefix("GET /api/v1/query?query=") })
        #expect(tinyproxy.requests.contains("CONNECT 127.0.0.1:\(prometheus.port) HTTP/1.1"), "\(tinyproxy.process.log)")
    }
}
