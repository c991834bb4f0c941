import Exposition
import Testing

@Suite("Content negotiation")
struct NegotiationTests {
    @Test("content types are exactly what scrapers expect")
    func contentTypes() {
        #expect(ExpositionFormat.text.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(ExpositionFormat.openMetrics.contentType == "application/openmetrics-text; version=1.0.0; charset=utf-8")
    }

    @Test(
        "Accept headers seen in the wild",
        arguments: [
            // Prometheus 2.x.
            ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", ExpositionFormat.openMetrics),
            // Prometheus 3.x default.
            ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
                + "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
                + "text/plain;version=0.0.4;q=0.3,*/*;q=0.2", .openMetrics),
            // Prometheus 3.x with native histograms: protobuf first, which we do not serve.
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,"
                + "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
                + "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
                + "text/plain;version=0.0.4;q=0.3,*/*;q=0.2", .openMetrics),
            // Prometheus 3.x with scrape_protocols preferring text: 1.0.0 text is not ours, 0.0.4 outranks OpenMetrics.
            ("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.5,"
                + "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.4,*/*;q=0.3", .text),
            // Prometheus 2.x configured for text only.
            ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", .text),
            // curl, wget, a browser.
            ("*/*", .text),
            ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", .text),
        ]
    )
    func realClients(_ accept: String, expected: ExpositionFormat) {
        #expect(ExpositionFormat.negotiate(accept: accept) == expected)
    }

    @Test(
        "parameters, case, whitespace, ties, q=0 and wildcards",
        arguments: [
            ("application/openmetrics-text", ExpositionFormat.openMetrics),
            ("application/openmetrics-text;version=0.0.1", .openMetrics),
            ("application/openmetrics-text; version=1.0.0; charset=utf-8", .openMetrics),
            ("  application/openmetrics-text ; version=\"1.0.0\" ; q=0.9 ", .openMetrics),
            ("APPLICATION/OpenMetrics-Text;VERSION=1.0.0;Q=1", .openMetrics),
            ("application/openmetrics-text;version=2.0.0", .text),
            ("text/plain", .text),
            ("text/plain;version=0.0.4", .text),
            ("text/plain;q=0.9,application/openmetrics-text;q=0.9", .text),
            ("application/openmetrics-text;q=0.9,text/plain;q=0.9", .openMetrics),
            ("text/plain;version=0.0.4;q=0.2,application/openmetrics-text;version=1.0.0;q=0.8", .openMetrics),
            ("application/openmetrics-text;version=1.0.0;q=0,*/*", .text),
            ("application/openmetrics-text;q=0.001", .openMetrics),
            ("application/openmetrics-text;q=0.000,text/plain;q=0", .text),
            ("application/*;q=0.5,text/plain;q=0.4", .openMetrics),
            ("text/*", .text),
            ("application/json", .text),
        ]
    )
    func rules(_ accept: String, expected: ExpositionFormat) {
        #expect(ExpositionFormat.negotiate(accept: accept) == expected)
    }

    @Test(
        "missing or garbage headers fall back to text",
        arguments: [
            nil, "", " ", ",,,", ";;;", "/", "*/", "/*", "=;=,=", "application/openmetrics-text;q=abc",
            "application/openmetrics-text;q=2", "application/openmetrics-text;q=-1", "application/openmetrics-text;novalue",
            "\u{0}\u{7f}ÿ", "text/plain;version=1.0.0",
        ] as [String?]
    )
    func garbage(_ accept: String?) {
        #expect(ExpositionFormat.negotiate(accept: accept) == .text)
    }

    @Test(
        "Accept-Encoding",
        arguments: [
            (nil, false), ("", false), ("gzip", true), ("GZIP", true), ("x-gzip", true),
            ("gzip, deflate, br, zstd", true), ("deflate, br", false), ("identity", false),
            ("gzip;q=0", false), ("gzip;q=0.0, *", false), ("gzip; q=0 , *;q=1", false), ("*", true), ("*;q=0", false),
            ("deflate, *;q=0.5", true), ("br;q=1.0, gzip;q=0.8, *;q=0.1", true), (" gzip ; q=0.5 ", true),
            ("gzip;q=0.000", false), ("Gzip;Q=0", false), ("gzip;q=bogus", false), ("gzipx", false),
        ] as [(String?, Bool)]
    )
    func acceptEncoding(_ header: String?, expected: Bool) {
        #expect(ExpositionFormat.acceptsGzip(header) == expected)
    }
}
