import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A peer on a real loopback socket that answers every connection with a script: bytes, pauses, then closes (or holds
/// the connection open until the test ends). What a hostile or broken API server, kubelet or collector looks like.
public final class ScriptedPeer: @unchecked Sendable {
    /// What the peer does, in order, on each connection once it has read the request head.
    public enum Step: Sendable {
        /// Write these bytes (UTF-8).
        case send(String)
        /// Write these bytes.
        case sendBytes([UInt8])
        /// Wait this many seconds.
        case pause(Double)
        /// Keep the connection open, silent, until the peer is closed.
        case hold
    }

    /// The listening socket.
    public let listener: LoopbackListener
    /// Its port on 127.0.0.1.
    public var port: Int { listener.port }
    private let thread: Thread
    private let shared = Shared()

    private final class Shared: Sendable {
        let held = Mutex<[Int32]>([])
        let requests = Mutex<[String]>([])
    }

    /// Listens now and answers every connection with `steps`, on a thread of its own.
    public init(_ steps: [Step]) throws {
        let listener = try LoopbackListener()
        self.listener = listener
        let shared = self.shared
        thread = Thread {
            // The thread closes the listening socket itself, once accept fails after `close()` shut it down: were
            // the test to close it, the descriptor's number could be reused by another test's listener while this
            // loop is still about to accept on it.
            defer { listener.close() }
            while true {
                let client = accept(listener.fd, nil, nil)
                guard client >= 0 else { return }
                // The request head, for the test to look at (bounded; the script does not wait for a body).
                var buffer = [UInt8](repeating: 0, count: 16 << 10)
                let n = recv(client, &buffer, buffer.count, 0)
                shared.requests.withLock { $0.append(String(decoding: buffer[..<max(0, n)], as: UTF8.self)) }
                var keep = false
                for step in steps {
                    switch step {
                    case .send(let text): _ = text.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                    case .sendBytes(let bytes): _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    case .pause(let seconds): Thread.sleep(forTimeInterval: seconds)
                    case .hold: keep = true
                    }
                }
                if keep { shared.held.withLock { $0.append(client) } } else { Glibc.close(client) }
            }
        }
        thread.start()
    }

    /// The first connection's request head ("" before one arrived).
    public var firstRequest: String { shared.requests.withLock { $0.first ?? "" } }

    /// Every connection's request head so far, oldest first.
    public var requests: [String] { shared.requests.withLock { $0 } }

    /// Stops accepting (the accept loop ends and closes the socket) and closes the connections held open.
    public func close() {
        shutdown(listener.fd, Int32(SHUT_RDWR))
        for fd in shared.held.withLock({ $0 }) { Glibc.close(fd) }
    }
}
