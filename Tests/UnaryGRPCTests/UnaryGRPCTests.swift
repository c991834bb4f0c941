import AccelMetricsTesting
import CurlHTTP
import Foundation
import Testing
@testable import UnaryGRPC

private func answer(status: Int = 200, headers: [(String, String)] = [("content-type", "application/grpc")],
                    trailers: [(String, String)] = [("grpc-status", "0")], body: [UInt8]) -> HTTPResponse {
    HTTPResponse(status: status, headers: headers.map { (name: $0.0, value: $0.1) }, trailers: trailers.map { (name: $0.0, value: $0.1) },
                 body: body)
}

private func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
    let n = UInt32(message.count)
    return [compressed ? 1 : 0, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + message
}

/// What comes back from a gRPC peer, read the way gRPC clients read it: statuses from trailers (or a trailers-only
/// answer's headers), HTTP statuses of peers that are not gRPC, frames that lie about their length.
@Suite("unary gRPC answers")
struct UnaryGRPCTests {
    @Test func theMessageOfAGoodAnswer() throws {
        #expect(try GRPCChannel.message(of: answer(body: frame([8, 1]))) == [8, 1])
        #expect(try GRPCChannel.message(of: answer(body: frame([]))) == [])
    }

    @Test func statusesComeFromTrailersOrATrailersOnlyAnswer() {
        let trailers = answer(trailers: [("grpc-status", "12"), ("grpc-message", "not%20here%3A%20%E2%9C%93")], body: [])
        #expect { try GRPCChannel.message(of: trailers) } throws: {
            ($0 as? GRPCStatusError)?.code == .unimplemented && ($0 as? GRPCStatusError)?.message == "not here: ✓"
        }
        let headersOnly = answer(headers: [("content-type", "application/grpc"), ("grpc-status", "14")], trailers: [], body: [])
        #expect { try GRPCChannel.message(of: headersOnly) } throws: { ($0 as? GRPCStatusError)?.code == .unavailable }
        // A bad escape is kept as it came, not dropped.
        let badEscape = answer(trailers: [("grpc-status", "13"), ("grpc-message", "100%")], body: [])
        #expect { try GRPCChannel.message(of: badEscape) } throws: { ($0 as? GRPCStatusError)?.message == "100%" }
    }

    @Test(arguments: [(400, "internalError"), (401, "unauthenticated"), (403, "permissionDenied"), (404, "unimplemented"),
                      (429, "unavailable"), (503, "unavailable"), (500, "unknown")])
    func httpStatusesOfPeersThatAreNotGRPC(status: Int, code: String) {
        #expect { try GRPCChannel.message(of: answer(status: status, trailers: [], body: [])) } throws: {
            ($0 as? GRPCStatusError)?.code.description == code
        }
    }

    @Test func brokenAnswersAreErrorsNotCrashes() {
        let cases: [(HTTPResponse, String)] = [
            (answer(headers: [("content-type", "text/html")], body: Array("<html>".utf8)), "not a gRPC answer"),
            (answer(trailers: [], body: frame([1])), "without a grpc-status"),
            (answer(trailers: [("grpc-status", "zero")], body: frame([1])), "is not a number"),
            (answer(body: [0, 0, 0]), "has no message"),
            (answer(body: [0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2]), "says 4294967295 bytes but 2 came"),
            (answer(body: frame([1], compressed: true)), "compressed"),
        ]
        for (response, expected) in cases {
            #expect { try GRPCChannel.message(of: response) } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }

    @Test func transferFailuresMapToTheStatusesGRPCClientsUse() {
        #expect(GRPCChannel.status(for: HTTPTransferError(.timeout, "slow"), timeout: 2).code == .deadlineExceeded)
        #expect(GRPCChannel.status(for: HTTPTransferError(.timeout, "slow"), timeout: 2).message.contains("deadline exceeded"))
        #expect(GRPCChannel.status(for: HTTPTransferError(.connect, "Connection refused"), timeout: 2).code == .unavailable)
        #expect(GRPCChannel.status(for: HTTPTransferError(.tooLarge, "big"), timeout: 2).code == .resourceExhausted)
        #expect(GRPCChannel.status(for: HTTPTransferError(.cancelled, "stop"), timeout: 2).code == .cancelled)
    }

    @Test func deadlinesGoOnTheWireInMilliseconds() {
        #expect(GRPCChannel.timeoutHeader(2) == "2000m")
        #expect(GRPCChannel.timeoutHeader(0.0001) == "1m")
        #expect(GRPCChannel.timeoutHeader(1e12) == "99999999m")
    }

    @Test func aPeerSpeakingHTTP1IsUnavailableNotAHang() async throws {
        // Prior-knowledge HTTP/2 to a server that answers HTTP/1.1 and closes: a clear failure, within the deadline.
        let peer = try ScriptedPeer([.send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")])
        defer { peer.close() }
        let channel = try GRPCChannel(target: .host("127.0.0.1", port: peer.port))
        let started = ContinuousClock.now
        #expect(throws: GRPCStatusError.self) {
            _ = try channel.unaryBytes("/x.Y/Z", message: [], compressed: false, timeout: 2)
        }
        // A failure, not a hang (the bound leaves room for a loaded test machine).
        #expect(ContinuousClock.now - started < .seconds(20))
    }
}
