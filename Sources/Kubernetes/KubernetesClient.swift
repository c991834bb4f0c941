import ConfigYAML
import CurlHTTP
import Dispatch
public import Logging
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A failure talking to the API server: the HTTP status and `metav1.Status` reason when it answered.
public struct KubernetesError: Error, Sendable, CustomStringConvertible {
    /// The failure's kind; compare against the static members, show ``KubernetesError/message``.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The code's name (`api`, `transport`, …), for logs.
        public var description: String { name }
        /// Credentials, CA bundle or in-cluster environment could not be read or loaded.
        public static let configuration = Code(name: "configuration")
        /// No HTTP answer: connect, TLS or the connection failed.
        public static let transport = Code(name: "transport")
        /// The API server answered with an error status (see ``status``).
        public static let api = Code(name: "api")
        /// The answer was not the JSON expected, or a watch event was over ``KubernetesClient/maxResponseBytes``.
        public static let decoding = Code(name: "decoding")
        /// No byte arrived within a read deadline (a watch on a half-open connection).
        public static let timeout = Code(name: "timeout")
    }

    /// The kind of failure.
    public var code: Code
    /// What was attempted on which path, and the server's message where it sent one.
    public var message: String
    /// HTTP status, for `.api`.
    public var status: Int?
    /// `metav1.Status.reason` (`NotFound`, `AlreadyExists`, `Expired`, `Forbidden`…), for `.api`.
    public var reason: String?

    /// Thrown by the client and the configuration loaders; fakes throw them too.
    public init(code: Code, message: String, status: Int? = nil, reason: String? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason
    }

    /// ``message``.
    public var description: String { message }

    /// HTTP 404.
    public var isNotFound: Bool { status == 404 }
    /// HTTP 409 with reason `AlreadyExists`: a create of an object that exists.
    public var isAlreadyExists: Bool { status == 409 && reason == "AlreadyExists" }
    /// 410 Gone: a watch's resourceVersion is too old; list again.
    public var isGone: Bool { status == 410 || reason == "Expired" || reason == "Gone" }
}

/// A small client for the few API calls this project makes: get, list (paginated), watch, create, patch.
public final class KubernetesClient: Sendable {
    /// As given to ``init(configuration:logger:maxResponseBytes:)``.
    public let configuration: KubernetesConfiguration
    private let tls: TLSMaterial?
    private let idle = Mutex<[HTTPConnection]>([])
    private let logger: Logger
    /// Bodies larger than this are refused (a list of every pod of a big cluster fits well within it).
    public let maxResponseBytes: Int

    /// At most this many idle connections are kept for reuse; a watch holds one of its own while it runs.
    static let idleConnections = 4

    /// Loads the CA bundle and client certificate now (throwing ``KubernetesError/Code/configuration`` when they
    /// do not load); connects on the first request. Call ``shutdown()`` before the client goes away.
    ///
    /// Requests go through libcurl with GnuTLS (``CurlHTTP``): HTTP/2 where the API server offers it, TLS 1.2 or
    /// later, no redirects, through the configuration's ``KubernetesConfiguration/proxy`` (logged when one applies;
    /// an unusable one throws ``KubernetesError/Code/configuration``).
    public init(configuration: KubernetesConfiguration, logger: Logger, maxResponseBytes: Int = 256 << 20) throws {
        self.configuration = configuration
        self.logger = logger
        self.maxResponseBytes = maxResponseBytes
        var certificate: TLSMaterial.Source?
        var key: TLSMaterial.Source?
        if case .clientCertificate(let certificatePEM, let keyPEM) = configuration.credentials {
            certificate = .pem(certificatePEM)
            key = .pem(keyPEM)
        }
        if configuration.server.lowercased().hasPrefix("https:") {
            do {
                tls = try TLSMaterial(ca: configuration.certificateAuthorityPEM.map { .pem($0) }, certificate: certificate, key: key,
                                      insecureSkipVerify: configuration.insecureSkipTLSVerify)
            } catch {
                throw KubernetesError(code: .configuration, message: "the API server's TLS settings do not load: \(error.message)")
            }
        } else {
            tls = nil
        }
        do {
            try configuration.proxy.validate()
        } catch {
            throw KubernetesError(code: .configuration, message: error.message)
        }
        if let proxy = configuration.proxy.route(for: configuration.server) {
            logger.info("API server requests go through a proxy", metadata: ["proxy": "\(HTTPProxy.redacted(proxy))"])
        }
        if configuration.tlsServerName != nil {
            logger.warning("kubeconfig tls-server-name is not supported; the server's certificate must name its URL's host")
        }
    }

    /// Closes the idle connections; no request may be made afterwards.
    public func shutdown() async {
        idle.withLock { $0.removeAll() }
    }

    /// An idle connection, or a new one.
    private func checkOut() throws -> HTTPConnection {
        if let reused = idle.withLock({ $0.popLast() }) { return reused }
        do {
            return try HTTPConnection(tls: tls, proxy: configuration.proxy, label: "accelmetrics.kubernetes")
        } catch {
            throw KubernetesError(code: .configuration, message: error.message)
        }
    }

    /// Back into the pool after a clean exchange; dropped (closing its connection) after a failed one.
    private func checkIn(_ connection: HTTPConnection) {
        idle.withLock { pool in
            if pool.count < Self.idleConnections { pool.append(connection) }
        }
    }

    // MARK: Requests

    /// GET `path` (e.g. `/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication`).
    public func get<Object: Decodable>(_ path: String, as type: Object.Type = Object.self, timeout: Double = 30) async throws
        -> Object
    {
        try decode(Object.self, from: try await send(method: "GET", path: path, timeout: timeout))
    }

    /// A list, following `continue` tokens; `query` adds parameters such as `labelSelector`/`fieldSelector`.
    public func list<Object: Decodable & Sendable>(
        _ path: String, query: [String: String] = [:], as type: Object.Type = Object.self, pageSize: Int = 500
    ) async throws -> (items: [Object], resourceVersion: String) {
        var items: [Object] = []
        var next: String?
        var resourceVersion = ""
        repeat {
            var parameters = query
            parameters["limit"] = String(pageSize)
            if let next { parameters["continue"] = next }
            let page = try decode(ObjectList<Object>.self, from: try await send(method: "GET", path: path, query: parameters))
            items += page.items
            resourceVersion = page.metadata.resourceVersion ?? resourceVersion
            next = page.metadata.continueToken.flatMap { $0.isEmpty ? nil : $0 }
        } while next != nil
        return (items, resourceVersion)
    }

    /// POST a new object (or a review); `AlreadyExists` comes back as an error with `isAlreadyExists`.
    public func create<Body: Encodable, Object: Decodable>(
        _ path: String, _ body: Body, as type: Object.Type = Object.self, timeout: Double = 30
    ) async throws -> Object {
        let bytes = try JSONEncoder().encode(body)
        return try decode(Object.self, from: try await send(method: "POST", path: path, body: Array(bytes), timeout: timeout))
    }

    /// PATCH with a merge patch (`application/merge-patch+json`).
    public func mergePatch<Object: Decodable>(_ path: String, _ patch: [UInt8], as type: Object.Type = Object.self) async throws
        -> Object
    {
        try decode(
            Object.self, from: try await send(method: "PATCH", path: path, body: patch, contentType: "application/merge-patch+json"))
    }

    /// Watch events from `resourceVersion` on, until the server ends the stream (after `timeoutSeconds`), the
    /// connection drops, or the task is cancelled. An `ERROR` event is thrown as a ``KubernetesError``.
    ///
    /// A watch on a half-open connection (a peer gone without a FIN, a stalled proxy) would otherwise wait forever,
    /// freezing whatever it feeds: when no byte (event or bookmark) arrives for `idleTimeoutSeconds`, it fails with
    /// ``KubernetesError/Code/timeout``. Pick it above `timeoutSeconds`, which the server honours by ending the
    /// stream, so that only a dead connection trips it.
    public func watch<Object: Decodable & Sendable>(
        _ path: String, query: [String: String] = [:], resourceVersion: String, as type: Object.Type = Object.self,
        timeoutSeconds: Int = 300, idleTimeoutSeconds: Double = 330,
        onEvent: @escaping @Sendable (WatchEvent<Object>) async throws -> Void
    ) async throws {
        var parameters = query
        parameters["watch"] = "true"
        parameters["allowWatchBookmarks"] = "true"
        parameters["resourceVersion"] = resourceVersion
        parameters["timeoutSeconds"] = String(timeoutSeconds)
        var request = try makeRequest(method: "GET", path: path, query: parameters)
        request.timeout = Double(timeoutSeconds + 30)
        request.idleTimeout = idleTimeoutSeconds
        let prepared = request
        let connection = try checkOut()
        let maxResponseBytes = self.maxResponseBytes
        // The transfer runs on the connection's queue and hands each chunk to this task through a stream, whose
        // unread bytes are bounded like any response.
        let (chunks, sink) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let buffered = Mutex(0)
        let transfer = Task {
            do {
                let response = try await connection.perform(prepared) { bytes in
                    let fits = buffered.withLock { pending -> Bool in
                        guard bytes.count <= maxResponseBytes - pending else { return false }
                        pending += bytes.count
                        return true
                    }
                    guard fits else {
                        sink.finish(throwing: KubernetesError(code: .decoding, message: "watch \(path): more than \(maxResponseBytes) bytes unread"))
                        return false
                    }
                    sink.yield(Array(bytes))
                    return true
                }
                sink.finish(throwing: response.status == 200 ? nil : Self.apiError(status: response.status, body: response.body, path: path))
            } catch {
                sink.finish(throwing: Self.watchError(error, path: path, idleTimeoutSeconds: idleTimeoutSeconds))
            }
        }
        defer { transfer.cancel() }
        var pending: [UInt8] = []
        for try await chunk in chunks {
            buffered.withLock { $0 -= chunk.count }
            pending += chunk
            guard pending.count <= maxResponseBytes else {
                throw KubernetesError(code: .decoding, message: "watch event larger than \(maxResponseBytes) bytes")
            }
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                guard !line.isEmpty else { continue }
                let raw = try Self.decodeJSON(RawWatchEvent.self, from: line)
                if raw.type == "ERROR" {
                    let status = try? Self.decodeJSON(StatusDocument.self, from: line)
                    throw KubernetesError(
                        code: .api, message: "watch \(path): \(status?.object.message ?? "error event")",
                        status: status?.object.code, reason: status?.object.reason)
                }
                try await onEvent(try Self.decodeJSON(WatchEvent<Object>.self, from: line))
            }
        }
        // The stream also ends when this task is cancelled: then the transfer is stopped (the deferred cancel) and
        // the connection dropped.
        try Task.checkCancellation()
        await transfer.value
        checkIn(connection)
    }

    // MARK: Plumbing

    private func makeRequest(method: String, path: String, query: [String: String] = [:]) throws -> HTTPRequest {
        var url = configuration.server + path
        if !query.isEmpty {
            url += "?" + query.sorted { $0.key < $1.key }.map { "\(Self.escape($0.key))=\(Self.escape($0.value))" }
                .joined(separator: "&")
        }
        var headers = [("Accept", "application/json"), ("User-Agent", "accelmetrics")]
        switch configuration.credentials {
        case .token(let token):
            headers.append(("Authorization", "Bearer \(token)"))
        case .tokenFile(let path):
            // Read on every request: projected service-account tokens are rotated in place.
            let token = String(decoding: try FileAccess.read(path), as: UTF8.self).filter { !$0.isWhitespace }
            headers.append(("Authorization", "Bearer \(token)"))
        case .basic(let username, let password):
            headers.append(("Authorization", "Basic " + Base64.encode(Array("\(username):\(password)".utf8))))
        case .none, .clientCertificate:
            break
        }
        return HTTPRequest(method: method, url: url, headers: headers, connectTimeout: 10, maxResponseBytes: maxResponseBytes)
    }

    private func send(
        method: String, path: String, query: [String: String] = [:], body: [UInt8]? = nil,
        contentType: String = "application/json", timeout: Double = 30
    ) async throws -> [UInt8] {
        var request = try makeRequest(method: method, path: path, query: query)
        if let body {
            request.headers.append(("Content-Type", contentType))
            request.body = body
        }
        request.timeout = timeout
        let connection = try checkOut()
        let response: HTTPResponse
        do {
            response = try await connection.perform(request)
        } catch {
            if error.kind == .tooLarge {
                throw KubernetesError(code: .decoding, message: "\(method) \(path): the answer is larger than \(maxResponseBytes) bytes")
            }
            throw KubernetesError(code: error.kind == .timeout ? .timeout : .transport, message: "\(method) \(path): \(error.message)")
        }
        checkIn(connection)
        guard (200..<300).contains(response.status) else {
            throw Self.apiError(status: response.status, body: response.body, path: path)
        }
        return response.body
    }

    /// A watch's transfer failure as the informer expects it: the read deadline as ``KubernetesError/Code/timeout``.
    static func watchError(_ error: any Error, path: String, idleTimeoutSeconds: Double) -> any Error {
        guard let error = error as? HTTPTransferError else { return error }
        switch error.kind {
        case .timeout where error.message.contains("no data for"):
            return KubernetesError(
                code: .timeout,
                message: "watch \(path): no data for \(Int(idleTimeoutSeconds.rounded(.up))) s (read deadline \(idleTimeoutSeconds) s); the connection is presumed dead")
        case .timeout:
            return KubernetesError(code: .timeout, message: "watch \(path): \(error.message)")
        case .cancelled:
            return CancellationError()
        case .aborted:
            return KubernetesError(code: .decoding, message: "watch \(path): \(error.message)")
        default:
            return KubernetesError(code: .transport, message: "watch \(path): \(error.message)")
        }
    }

    private func decode<Object: Decodable>(_ type: Object.Type, from bytes: [UInt8]) throws -> Object {
        try Self.decodeJSON(type, from: bytes)
    }

    static func decodeJSON<Object: Decodable>(_ type: Object.Type, from bytes: [UInt8]) throws -> Object {
        do {
            return try JSONDecoder().decode(Object.self, from: Data(bytes))
        } catch {
            throw KubernetesError(code: .decoding, message: "unexpected answer from the API server: \(error)")
        }
    }

    static func apiError(status: Int, body: [UInt8], path: String) -> KubernetesError {
        let document = try? JSONDecoder().decode(StatusBody.self, from: Data(body))
        return KubernetesError(
            code: .api, message: "\(path): HTTP \(status)\(document?.message.map { ": \($0)" } ?? "")", status: status,
            reason: document?.reason)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return out
    }

    private struct StatusBody: Decodable {
        var message: String?
        var reason: String?
        var code: Int?
    }

    private struct RawWatchEvent: Decodable {
        var type: String
    }

    private struct StatusDocument: Decodable {
        var object: StatusBody
    }
}

/// One watch event.
public struct WatchEvent<Object: Decodable & Sendable>: Decodable, Sendable {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`.
    public var type: String
    /// The object as the event left it; a `BOOKMARK` carries only `metadata.resourceVersion`.
    public var object: Object
}

/// `{"metadata": {"resourceVersion", "continue"}, "items": [...]}`.
struct ObjectList<Object: Decodable>: Decodable {
    struct Metadata: Decodable {
        var resourceVersion: String?
        var continueToken: String?
        enum CodingKeys: String, CodingKey {
            case resourceVersion
            case continueToken = "continue"
        }
    }
    var metadata: Metadata
    var items: [Object]
}
