import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Debian's tinyproxy on 127.0.0.1: a real forward proxy (absolute-URI requests, `CONNECT` tunnels to any port), for
/// tests of clients that reach their peers through one. It logs every request line it is sent.
///
/// tinyproxy keeps the SIGTERM mask Foundation gives children, so it is stopped with SIGKILL.
public final class Tinyproxy: @unchecked Sendable {
    // Safe: every stored property is immutable; the process is a ManagedProcess.

    /// The running proxy (its log).
    public let process: ManagedProcess

    /// The port it listens on.
    public let port: Int

    /// Its configuration file.
    private let directory: TemporaryDirectory

    /// Starts tinyproxy in the foreground on a free port (up to three ports: one is picked before tinyproxy binds
    /// it, and another program may take it first) and waits until it accepts connections. With `basicAuth`, clients
    /// must send those credentials (`Proxy-Authorization`) or get 407; tinyproxy's configuration takes letters,
    /// digits and `-._` only.
    public init(basicAuth: (user: String, password: String)? = nil) throws {
        directory = TemporaryDirectory(prefix: "accel-tinyproxy")
        var failure: any Error = HarnessError("tinyproxy did not start")
        for _ in 0..<3 {
            let port = try freePort()
            let configuration = try directory.write(
                "tinyproxy.conf",
                """
                Port \(port)
                Listen 127.0.0.1
                Allow 127.0.0.1
                Timeout 30
                MaxClients 32
                DisableViaHeader Yes
                LogLevel Connect
                \(basicAuth.map { "BasicAuth \($0.user) \($0.password)" } ?? "")

                """)
            let process = try ManagedProcess("/usr/bin/tinyproxy", ["-d", "-c", configuration.path], directoryPrefix: "accel-tinyproxy-run")
            process.stopSignal = SIGKILL
            do {
                try process.waitForPort(port, timeout: 10)
                self.process = process
                self.port = port
                return
            } catch {
                process.stop()
                failure = error
            }
        }
        directory.remove()
        throw failure
    }

    deinit { stop() }

    /// `http://127.0.0.1:port`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// The request lines it was sent, oldest first: `GET http://host:port/path HTTP/1.1`, `CONNECT host:port HTTP/1.1`.
    public var requests: [String] {
        (process.log + process.output).split(separator: "\n").compactMap { line in
            guard let marker = line.firstRange(of: "Request (file descriptor "), let close = line[marker.upperBound...].firstRange(of: "): ")
            else { return nil }
            return String(line[close.upperBound...])
        }
    }

    /// Kills the proxy and removes its files (idempotent; `deinit` does it otherwise).
    public func stop() {
        process.stop()
        directory.remove()
    }
}
