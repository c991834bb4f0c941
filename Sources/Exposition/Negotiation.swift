/// HTTP content negotiation for `/metrics`.
///
/// Hand-written over `Substring` because library code may not use Foundation, and because a scrape must never
/// fail over a header: anything we cannot parse degrades to the text format and to no compression.
extension ExpositionFormat {
    /// Picks the format for an `Accept` header.
    ///
    /// The media range with the highest `q` that we can serve wins; equal `q` goes to the earlier range, `q=0`
    /// means "not acceptable". A missing, empty or unintelligible header, or one naming only types we cannot
    /// serve, gets the text format: every scraper reads it, and refusing a scrape with 406 helps no one.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept else { return .text }
        var best: (format: ExpositionFormat, q: Double)?
        for element in accept.split(separator: ",") {
            guard let range = HeaderElement(element), let format = servedFormat(for: range) else { continue }
            guard range.q > 0 else { continue }
            // Strictly greater: on a tie the earlier range (the client's stated preference order) stays.
            if let current = best, range.q <= current.q { continue }
            best = (format, range.q)
        }
        return best?.format ?? .text
    }

    /// Whether an `Accept-Encoding` header lets us answer with `Content-Encoding: gzip`.
    ///
    /// An explicit `gzip` (or the legacy alias `x-gzip`) entry decides, so `gzip;q=0, *` refuses gzip;
    /// otherwise `*` with a non-zero `q` allows it. No header means identity only (RFC 9110 §12.5.3).
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var explicit: Bool?
        var wildcard: Bool?
        for element in acceptEncoding.split(separator: ",") {
            guard let coding = HeaderElement(element) else { continue }
            if coding.type.equalsIgnoringASCIICase("gzip") || coding.type.equalsIgnoringASCIICase("x-gzip") {
                // Several gzip entries: the most permissive one wins, matching common server behaviour.
                explicit = (explicit ?? false) || coding.q > 0
            } else if coding.type == "*" {
                wildcard = (wildcard ?? false) || coding.q > 0
            }
        }
        return explicit ?? wildcard ?? false
    }

    /// Which of our formats a single media range asks for, or nil when we cannot serve it.
    private static func servedFormat(for range: HeaderElement) -> ExpositionFormat? {
        let version = range.parameter("version")
        switch (range.type, range.subtype) {
        case let (type, subtype) where type.equalsIgnoringASCIICase("application")
            && subtype.equalsIgnoringASCIICase("openmetrics-text"):
            // No version means "any version", and 1.0.0 is one. 0.0.1 is the pre-release spelling of the same
            // syntax that Prometheus 2.x still lists; answering 1.0.0 to it is what client_golang does.
            guard version == nil || version == "1.0.0" || version == "0.0.1" else { return nil }
            return .openMetrics
        case let (type, subtype) where type.equalsIgnoringASCIICase("text")
            && subtype.equalsIgnoringASCIICase("plain"):
            // text/plain;version=1.0.0 (Prometheus 3, UTF-8 names) is a different grammar: leave it to */*.
            guard version == nil || version == "0.0.4" else { return nil }
            return .text
        case let (type, "*") where type.equalsIgnoringASCIICase("text"):
            return .text
        case let (type, "*") where type.equalsIgnoringASCIICase("application"):
            return .openMetrics
        case ("*", "*"):
            return .text
        default:
            return nil
        }
    }
}

/// One comma-separated element of an `Accept` or `Accept-Encoding` header: `type[/subtype] *(; name=value)`.
///
/// Keeps slices of the original header; parameters are looked up linearly because there are only ever a few.
struct HeaderElement {
    var type: Substring
    var subtype: Substring
    var parameters: [(name: Substring, value: Substring)]
    /// The quality, 1 when absent; an element with an unparsable `q` is dropped rather than guessed at.
    var q: Double

    init?(_ element: Substring) {
        var parts = element.split(separator: ";", omittingEmptySubsequences: false).makeIterator()
        guard let head = parts.next()?.trimmingOWS(), !head.isEmpty else { return nil }
        if let slash = head.firstIndex(of: "/") {
            type = head[..<slash].trimmingOWS()
            subtype = head[head.index(after: slash)...].trimmingOWS()
            guard !type.isEmpty, !subtype.isEmpty else { return nil }
        } else {
            type = head
            subtype = ""
        }
        parameters = []
        q = 1
        while let raw = parts.next() {
            let parameter = raw.trimmingOWS()
            if parameter.isEmpty { continue }
            guard let equals = parameter.firstIndex(of: "=") else { return nil }
            let name = parameter[..<equals].trimmingOWS()
            var value = parameter[parameter.index(after: equals)...].trimmingOWS()
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = value.dropFirst().dropLast()
            }
            if name.equalsIgnoringASCIICase("q") {
                guard let quality = Double(value), quality >= 0, quality <= 1 else { return nil }
                q = quality
            } else {
                parameters.append((name, value))
            }
        }
    }

    func parameter(_ name: String) -> Substring? {
        parameters.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }
}

extension Substring {
    /// Strips HTTP optional whitespace (space and tab) from both ends.
    func trimmingOWS() -> Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }

    /// Header tokens are case-insensitive ASCII; comparing bytes avoids allocating a lowercased copy.
    func equalsIgnoringASCIICase(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return zip(utf8, other.utf8).allSatisfy { lowerASCII($0) == lowerASCII($1) }
    }
}

@inline(__always)
private func lowerASCII(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
}
