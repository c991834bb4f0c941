import CMicroHTTPD
import Dispatch
import Glibc
import Synchronization

/// An absolute deadline for each request's headers, which libmicrohttpd's idle timeout is not: a client that sends
/// one header byte every few seconds resets the idle timer forever and holds its connection slot. Here a connection
/// must deliver a complete request head within ``limit`` of being accepted (TLS handshake included), and each
/// further request on a kept-alive connection within the idle allowance plus ``limit`` of the previous request's
/// end. A connection past its deadline is shut down (`shutdown(2)`); libmicrohttpd then sees the end of the stream
/// and closes it as it would any other.
///
/// libmicrohttpd reports connections opening and closing (`MHD_OPTION_NOTIFY_CONNECTION`); the access handler
/// reports a head complete; the request-completed callback reports a request over. A timer checks the table
/// four times a second. An entry is removed in the closing notification, which libmicrohttpd sends before it
/// closes the socket, and the shutdown happens under the same lock, so a descriptor number reused by a later
/// connection is never touched.
final class HeaderDeadlines: Sendable {
    /// Seconds from acceptance (or from the end of the previous request plus ``idleAllowance``) to a complete head.
    let limit: Double
    /// Seconds a kept-alive connection may wait for its next request (libmicrohttpd's idle timeout).
    let idleAllowance: Double
    private let table = Mutex<[UInt: Entry]>([:])
    private nonisolated(unsafe) let timer: any DispatchSourceTimer  // Dispatch sources are thread-safe
    private let cut = Atomic<Int>(0)

    private struct Entry {
        let fd: Int32
        /// Monotonic nanoseconds; nil while a request is being answered.
        var deadline: UInt64?
    }

    init(limit: Double, idleAllowance: Double) {
        self.limit = limit
        self.idleAllowance = idleAllowance
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        timer.schedule(deadline: .now() + 0.25, repeating: 0.25, leeway: .milliseconds(50))
        timer.setEventHandler { [weak self] in self?.sweep() }
        timer.resume()
    }

    deinit {
        timer.cancel()
    }

    /// Connections shut down for missing their deadline, since the daemon started.
    var connectionsCut: Int { cut.load(ordering: .relaxed) }

    func stop() {
        timer.cancel()
    }

    func opened(_ connection: OpaquePointer) {
        let fd = CMicroHTTPD_connection_fd(connection)
        guard fd >= 0 else { return }
        let deadline = Self.now() &+ Self.nanoseconds(limit)
        table.withLock { $0[Self.key(connection)] = Entry(fd: fd, deadline: deadline) }
    }

    func closed(_ connection: OpaquePointer) {
        _ = table.withLock { $0.removeValue(forKey: Self.key(connection)) }
    }

    /// The head is in: no deadline while the request is answered (libmicrohttpd's idle timeout still applies).
    func headComplete(_ connection: OpaquePointer) {
        table.withLock { $0[Self.key(connection)]?.deadline = nil }
    }

    /// A request is over; a kept-alive connection must bring its next head in time.
    func requestFinished(_ connection: OpaquePointer) {
        let deadline = Self.now() &+ Self.nanoseconds(idleAllowance + limit)
        table.withLock { $0[Self.key(connection)]?.deadline = deadline }
    }

    private func sweep() {
        let now = Self.now()
        let count = table.withLock { entries -> Int in
            var count = 0
            for (key, entry) in entries {
                guard let deadline = entry.deadline, deadline <= now else { continue }
                shutdown(entry.fd, Int32(SHUT_RDWR))
                entries[key]?.deadline = nil
                count += 1
            }
            return count
        }
        if count > 0 { cut.add(count, ordering: .relaxed) }
    }

    private static func key(_ connection: OpaquePointer) -> UInt {
        UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection)))
    }

    private static func nanoseconds(_ seconds: Double) -> UInt64 {
        seconds <= 0 ? 0 : seconds >= 1e9 ? UInt64(1e18) : UInt64(seconds * 1e9)
    }

    private static func now() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }
}

/// `MHD_OPTION_NOTIFY_CONNECTION`: a connection was accepted or is about to be closed.
let connectionNotified: MHD_NotifyConnectionCallback = { cls, connection, _, code in
    guard let cls, let connection else { return }
    let server = CallbackContext.fromOpaque(cls, as: ServerContext.self).takeUnretainedValue()
    guard let deadlines = server.headerDeadlines else { return }
    // MHD_CONNECTION_NOTIFY_STARTED is 0, MHD_CONNECTION_NOTIFY_CLOSED 1.
    switch code.rawValue {
    case 0: deadlines.opened(connection)
    case 1: deadlines.closed(connection)
    default: break
    }
}
