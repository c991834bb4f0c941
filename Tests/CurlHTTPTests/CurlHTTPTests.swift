import AccelMetricsTesting
import CCurl
import CurlHTTP
import Foundation
import Synchronization
import Testing

private func get(_ port: Int, path: String = "/", timeout: Double? = 5, idle: Double? = nil, max: Int = 1 << 20) -> HTTPRequest {
    HTTPRequest(url: "http://127.0.0.1:\(port)\(path)", timeout: timeout, connectTimeout: 2, idleTimeout: idle, maxResponseBytes: max)
}

@Suite("HTTP client on libcurl: deadlines, bounds and hostile peers")
struct CurlHTTPTests {
    /// Debian's libcurl links libssh2; its OpenSSL start-up (1.5 MiB resident) is skipped, and HTTP still works.
    @Test func libssh2StartsWithoutOpenSSLWhereLibcurlLinksIt() throws {
        #expect(ccurl_global_init() == CURLE_OK)
        // procfs files have no size: read to the end rather than trusting one.
        let maps = String(decoding: try #require(FileHandle(forReadingAtPath: "/proc/self/maps")).readDataToEndOfFile(), as: UTF8.self)
        #expect(ccurl_ssh_crypto_skipped() == (maps.contains("/libssh2.so.1") ? 1 : 0))
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")])
        defer { peer.close() }
        #expect(try HTTPConnection().perform(get(peer.port)).body == Array("ok".utf8))
    }

    @Test func answersHeadersAndBodyComeBack() throws {
        let peer = try ScriptedPeer([.send("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Thing:  two words \r\nContent-Length: 5\r\n\r\nhello")])
        defer { peer.close() }
        let connection = try HTTPConnection()
        var request = get(peer.port, path: "/x?y=1")
        request.headers = [("Authorization", "Bearer t")]
        let response = try connection.perform(request)
        #expect(response.status == 201)
        #expect(response.header("content-type") == "text/plain")
        #expect(response.header("X-THING") == "two words")
        #expect(response.body == Array("hello".utf8))
        #expect(peer.firstRequest.hasPrefix("GET /x?y=1 HTTP/1.1\r\n"))
        #expect(peer.firstRequest.contains("Authorization: Bearer t\r\n"))
        #expect(!peer.firstRequest.lowercased().contains("expect:"))
    }

    @Test func aBodyOverTheLimitFailsAsTooLarge() throws {
        let body = String(repeating: "x", count: 10_000)
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n\(body)")])
        defer { peer.close() }
        #expect {
            try HTTPConnection().perform(get(peer.port, max: 4096))
        } throws: { ($0 as? HTTPTransferError)?.kind == .tooLarge }
    }

    @Test func endlessHeadersAreCutAt64KiB() throws {
        let line = "X-Junk: " + String(repeating: "j", count: 1000) + "\r\n"
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\n" + String(repeating: line, count: 100))])
        defer { peer.close() }
        #expect {
            try HTTPConnection().perform(get(peer.port))
        } throws: { ($0 as? HTTPTransferError)?.kind == .tooLarge }
    }

    @Test func aPeerThatNeverAnswersMissesTheDeadline() throws {
        let peer = try ScriptedPeer([.hold])
        defer { peer.close() }
        let started = ContinuousClock.now
        #expect {
            try HTTPConnection().perform(get(peer.port, timeout: 0.5))
        } throws: { error in
            let error = error as? HTTPTransferError
            return error?.kind == .timeout && error?.message.contains("deadline") == true
        }
        // Far below "never": the bound leaves room for a test machine running hundreds of tests on two cores.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aStreamThatGoesSilentHitsItsIdleDeadline() throws {
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"), .hold])
        defer { peer.close() }
        let chunks = Mutex<[String]>([])
        #expect {
            try HTTPConnection().perform(get(peer.port, timeout: nil, idle: 1)) { bytes in
                chunks.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
                return true
            }
        } throws: { error in
            let error = error as? HTTPTransferError
            return error?.kind == .timeout && error?.message.contains("no data for") == true
        }
        #expect(chunks.withLock { $0 } == ["first"])
    }

    @Test func anErrorAnswerIsCollectedNotStreamed() throws {
        let peer = try ScriptedPeer([.send("HTTP/1.1 410 Gone\r\nContent-Length: 18\r\n\r\n{\"reason\":\"Gone\"}\n")])
        defer { peer.close() }
        let streamed = Mutex(0)
        let response = try HTTPConnection().perform(get(peer.port)) { bytes in
            streamed.withLock { $0 += bytes.count }
            return true
        }
        #expect(response.status == 410)
        #expect(String(decoding: response.body, as: UTF8.self) == "{\"reason\":\"Gone\"}\n")
        #expect(streamed.withLock { $0 } == 0)
    }

    @Test func aReaderThatStopsTheStreamEndsIt() throws {
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), .hold])
        defer { peer.close() }
        #expect {
            try HTTPConnection().perform(get(peer.port, timeout: nil, idle: 30)) { _ in false }
        } throws: { ($0 as? HTTPTransferError)?.kind == .aborted }
    }

    @Test func nobodyListeningIsAConnectFailureThatSaysRefused() throws {
        let port = try freePort()
        #expect {
            try HTTPConnection().perform(get(port))
        } throws: { error in
            let error = error as? HTTPTransferError
            return error?.kind == .connect && error?.message.lowercased().contains("refused") == true
        }
    }

    @Test func garbageInsteadOfHTTPIsATransportFailure() throws {
        let peer = try ScriptedPeer([.sendBytes((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) })])
        defer { peer.close() }
        #expect(throws: HTTPTransferError.self) { try HTTPConnection().perform(get(peer.port)) }
    }

    @Test func cancellingTheTaskStopsAHungExchange() async throws {
        let peer = try ScriptedPeer([.hold])
        defer { peer.close() }
        let connection = try HTTPConnection()
        let request = get(peer.port, timeout: 60)
        let task = Task { try await connection.perform(request) }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        task.cancel()
        await #expect { _ = try await task.value } throws: { ($0 as? HTTPTransferError)?.kind == .cancelled }
        // Long before the 60 s deadline (the progress callback sees the flag about once a second; the bound leaves
        // room for a loaded test machine).
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aPostCarriesItsBodyAndMethod() throws {
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
        defer { peer.close() }
        var request = get(peer.port, path: "/p")
        request.method = "PATCH"
        request.body = Array("{\"a\":1}".utf8)
        request.headers = [("Content-Type", "application/merge-patch+json")]
        _ = try HTTPConnection().perform(request)
        #expect(peer.firstRequest.hasPrefix("PATCH /p HTTP/1.1\r\n"))
        #expect(peer.firstRequest.contains("Content-Length: 7\r\n"))
    }

    @Test func aHeaderWithALineBreakIsRefusedNotSent() throws {
        let peer = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
        defer { peer.close() }
        var request = get(peer.port)
        request.headers = [("Authorization", "Bearer t\r\nX-Admin: yes")]
        #expect {
            try HTTPConnection().perform(request)
        } throws: { ($0 as? HTTPTransferError)?.kind == .configuration }
    }

    @Test func tlsMaterialThatDoesNotLoadIsRefusedAtStart() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        #expect {
            try TLSMaterial(ca: .pem(Array("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".utf8)))
        } throws: { ($0 as? HTTPTransferError)?.kind == .configuration }
        #expect {
            try TLSMaterial(ca: .file(directory.path("missing.pem")))
        } throws: { ($0 as? HTTPTransferError)?.message.contains("cannot be read") == true }
        #expect(throws: HTTPTransferError.self) { try TLSMaterial(certificate: .pem([1, 2, 3])) }
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func pemBytesAreHeldInMemoryFilesAndFilesPassedAsTheyAre() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (_, err, status) = try runProgram("/bin/bash", [PackagePaths.file("scripts/test-pki.sh").path, directory.path("pki")])
        guard status == 0 else { throw HarnessError("test-pki.sh failed: \(err)") }
        let ca = try Array(Data(contentsOf: directory.url("pki/ca.pem")))
        let material = try TLSMaterial(ca: .pem(ca), certificate: .file(directory.path("pki/alice.pem")),
                                       key: .pem(try Array(Data(contentsOf: directory.url("pki/alice.key")))))
        // The PEM given as bytes is readable at its /proc/self/fd path, the file is passed as it is.
        let caPath = try #require(material.caPath)
        #expect(caPath.hasPrefix("/proc/self/fd/"))
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: caPath))) == ca)
        #expect(material.certificatePath == directory.path("pki/alice.pem"))
        #expect(try #require(material.keyPath).hasPrefix("/proc/self/fd/"))
        #expect {
            try TLSMaterial(ca: .pem(ca), certificate: .file(directory.path("pki/alice.pem")), key: .pem(ca))
        } throws: { ($0 as? HTTPTransferError)?.message.contains("client key") == true }
    }
}
