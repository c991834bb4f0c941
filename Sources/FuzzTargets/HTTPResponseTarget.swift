import Exporter
import Inference
import ScrapeClient

extension FuzzTargets {
    /// The exporter's HTTP/1.1 response reader (model servers and workload pods answer it): status line, headers,
    /// Content-Length, chunked and close-delimited bodies, at the bounds it is really used with.
    ///
    /// The first byte picks the response bound; the rest is the answer, read once in one large piece and once a few
    /// bytes at a time (as a slow peer sends it). The bound holds, and how the bytes arrive changes nothing.
    static let httpResponse = FuzzTarget("http-response", maxLength: 160 << 10) { (raw) throws(FuzzFinding) in
        guard let selector = raw.first else { return }
        let bounds = [InferenceSource.defaultMaxBytes, WorkloadMetrics.Limits().bytes, 4096]
        let maxBytes = bounds[Int(selector) % bounds.count]
        let answer = raw.dropFirst()
        let whole = Result { () throws(ScrapeError) in try ScrapeClient.readResponse(from: answer, pieceSize: 1 << 16, maxBytes: maxBytes) }
        let dripped = Result { () throws(ScrapeError) in
            try ScrapeClient.readResponse(from: answer, pieceSize: 1 + Int(selector >> 4), maxBytes: maxBytes)
        }
        for result in [whole, dripped] {
            guard case .success(let response) = result else { continue }
            try check(response.body.count <= maxBytes, "a body of \(response.body.count) bytes passed the bound of \(maxBytes)")
            try check(response.headers.count <= 100, "\(response.headers.count) headers passed the bound of 100")
        }
        // Reading more at once than needed may see the bound passed earlier; below it, the two must agree.
        guard answer.count <= maxBytes else { return }
        switch (whole, dripped) {
        case (.success(let a), .success(let b)):
            try check(
                a.status == b.status && a.body == b.body && a.headers.map(\.name) == b.headers.map(\.name)
                    && a.headers.map(\.value) == b.headers.map(\.value),
                "the answer read whole and read in pieces differ")
        case (.failure(let a), .failure(let b)):
            try check(a.code == b.code, "read whole: \(a.code) (\(a.message)); in pieces: \(b.code) (\(b.message))")
        case (.success, .failure(let error)):
            throw FuzzFinding("read whole it is an answer; in pieces: \(error.code) (\(error.message))")
        case (.failure(let error), .success):
            throw FuzzFinding("in pieces it is an answer; read whole: \(error.code) (\(error.message))")
        }
    }
}
