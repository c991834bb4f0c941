import CMicroHTTPD
import Dispatch
import Glibc
public import Logging
import Synchronization

/// The project's one HTTP server: libmicrohttpd with an internal epoll thread pool.
///
/// Every request runs the handler synchronously on a libmicrohttpd worker thread, so handlers must be quick and
/// must not block: the exporter's `/metrics` only hands over pre-rendered bytes. Before a handler runs, the server
/// answers methods outside ``Configuration/allowedMethods`` with 405 and drops request bodies; libmicrohttpd itself
/// enforces the connection, header-size and idle-time limits and answers malformed requests with 400.
///
/// Handlers must not call ``stop()``: it waits for the worker threads, one of which would be the caller.
public final class HTTPServer: Sendable {
    /// The configuration the server was created with.
    public let configuration: Configuration
    private let logger: Logger
    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    /// What a running daemon owns; guarded so that start and stop from different threads do not interleave.
    private let lifecycle = Mutex<Running?>(nil)
    /// Daemons replaced by a TLS reload, finishing their connections.
    private let retiring = Mutex<[Retiring]>([])
    /// Separate from `lifecycle` so that reading them never waits on a start or stop in progress.
    private let boundPort = Atomic<Int>(0)
    private let running = Atomic<Bool>(false)

    /// Creates a stopped server; ``start()`` binds the port. `logger` receives the server's own messages and
    /// libmicrohttpd's error log.
    public init(
        configuration: Configuration,
        logger: Logger,
        handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse
    ) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
    }

    /// Creates a stopped server that answers through `router`.
    public convenience init(configuration: Configuration, logger: Logger, router: Router) {
        self.init(configuration: configuration, logger: logger, handler: { router.handle($0) })
    }

    deinit {
        stop()
    }

    /// The port the server listens on while running (the kernel's choice when configured with port 0); after
    /// ``stop()`` the port it last listened on; 0 before the first start.
    public var port: Int {
        boundPort.load(ordering: .acquiring)
    }

    /// Whether the server is listening.
    public var isRunning: Bool {
        running.load(ordering: .acquiring)
    }

    /// Binds the listen socket and starts the worker threads. Throws ``HTTPServerError`` when the configuration is
    /// invalid, the host does not resolve, the port cannot be bound (`errno` says why, e.g. `EADDRINUSE`) or
    /// libmicrohttpd refuses to start. Starting a running server is a programming error; a stopped one may be
    /// started again.
    public func start() throws {
        try configuration.validate()
        if let tls = configuration.tls { try checkCredentials(tls) }
        try lifecycle.withLock { current in
            precondition(current == nil, "HTTPServer.start() called while the server is running")
            let listenFD = try ListenSocket.open(host: configuration.host, port: configuration.port)
            do {
                let daemon = try startDaemon(listenFD: listenFD, configuration: configuration)
                current = Running(daemon: daemon, listenFD: listenFD, tls: configuration.tls)
            } catch {
                shutdown(listenFD, Int32(SHUT_RDWR))
                close(listenFD)
                throw error
            }
            running.store(true, ordering: .releasing)
        }
    }

    /// Serves new connections with `tls` from now on (nil: plain HTTP), without dropping the listen socket: a
    /// second daemon takes over the socket at once; the previous one stops accepting and finishes its connections'
    /// requests (it is stopped after `drainSeconds`, or by ``stop()``, whichever comes first). Throws, and keeps
    /// serving as before, when `tls` does not load. Turning TLS on or off this way is allowed: the socket stays.
    public func reloadTLS(_ tls: HTTPServer.TLSConfiguration?, drainSeconds: Double = 10) throws {
        if let tls { try checkCredentials(tls) }
        let retired: Retiring? = try lifecycle.withLock { current in
            guard var running = current else { return nil }
            guard running.tls != tls else { return nil }
            var updated = configuration
            updated.tls = tls
            let fresh = try startDaemon(listenFD: running.listenFD, configuration: updated)
            let old = running.daemon
            running.daemon = fresh
            running.tls = tls
            current = running
            // The old daemon stops accepting; it hands back its duplicate of the listen socket, which is ours to
            // close (with the daemon, after the drain or on stop: a duplicate left open keeps the port listening).
            let retiring = Retiring(parts: old, quiescedFD: MHD_quiesce_daemon(old.daemon))
            self.retiring.withLock { $0.append(retiring) }
            return retiring
        }
        guard let retired else { return }
        logger.info(tls == nil ? "TLS turned off" : "TLS credentials reloaded", metadata: ["port": "\(port)"])
        DispatchQueue.global().asyncAfter(deadline: .now() + drainSeconds) { [self] in
            let stillRetiring = retiring.withLock { list -> Bool in
                guard let index = list.firstIndex(where: { $0.parts.daemon == retired.parts.daemon }) else { return false }
                list.remove(at: index)
                return true
            }
            if stillRetiring { retired.stop() }
        }
    }

    /// The TLS settings of the daemon serving new connections (nil: plain HTTP); nil when stopped.
    public var currentTLS: HTTPServer.TLSConfiguration? {
        lifecycle.withLock { $0?.tls }
    }

    /// Loads the pair with GnuTLS first: a clear error instead of a failed daemon start, and a warning for a
    /// certificate outside its validity period.
    private func checkCredentials(_ tls: HTTPServer.TLSConfiguration) throws {
        let (notBefore, notAfter) = try TLSCredentials.validate(
            certificateChainPEM: tls.certificateChainPEM, privateKeyPEM: tls.privateKeyPEM)
        let now = Int(time(nil))
        if notAfter > 0, notAfter < now {
            logger.warning("the TLS serving certificate has expired; clients will refuse it", metadata: ["not_after": "\(notAfter)"])
        } else if notBefore > now {
            logger.warning("the TLS serving certificate is not valid yet", metadata: ["not_before": "\(notBefore)"])
        }
        if let clientCAs = tls.clientCAsPEM, !clientCAs.isEmpty { _ = try CertificateAuthority(pem: clientCAs) }
    }

    /// Closes the listen socket and every connection and waits for the worker threads to finish. Does nothing if
    /// the server is not running; also runs on deinit.
    public func stop() {
        lifecycle.withLock { state in
            guard let current = state.take() else { return }
            running.store(false, ordering: .releasing)
            current.daemon.stop()
            for retired in retiring.withLock({ list in defer { list = [] }; return list }) { retired.stop() }
            close(current.listenFD)
            logger.info("HTTP server stopped", metadata: ["port": "\(port)"])
        }
    }

    private func startDaemon(listenFD: Int32, configuration: Configuration) throws -> DaemonParts {
        // libmicrohttpd owns the descriptor it is given and closes it on stop, but on a failed start it closes it
        // on some paths and not on others. It gets a duplicate, so this function can always shut down and close
        // its own descriptor, which stops the listening on a failed start whatever libmicrohttpd did.
        let daemonFD = fcntl(listenFD, F_DUPFD_CLOEXEC, 0)
        guard daemonFD >= 0 else {
            throw HTTPServerError(
                code: .bindFailed,
                message: "cannot duplicate the listen socket",
                systemErrno: errno,
                operation: "fcntl(F_DUPFD_CLOEXEC)"
            )
        }

        let context = ServerContext(configuration: configuration, logger: logger, handler: handler)
        let contextPointer = CallbackContext.retain(context)
        let logSink = UnsafeMutablePointer<CMicroHTTPD_Logger>.allocate(capacity: 1)
        logSink.initialize(to: CMicroHTTPD_Logger(sink: libraryLogSink, context: contextPointer))

        var options: [MHD_OptionItem] = [
            option(.LISTEN_SOCKET, Int(daemonFD)),
            option(.CONNECTION_LIMIT, configuration.connectionLimit),
            option(.CONNECTION_TIMEOUT, configuration.connectionTimeoutSeconds),
            option(.CONNECTION_MEMORY_LIMIT, configuration.connectionMemoryLimit),
        ]
        if configuration.perIPConnectionLimit > 0 {
            options.append(option(.PER_IP_CONNECTION_LIMIT, configuration.perIPConnectionLimit))
        }
        if configuration.threads > 1 {
            options.append(option(.THREAD_POOL_SIZE, configuration.threads))
        }
        // TLS credentials: libmicrohttpd reads these while starting; they are kept until the daemon stops.
        var strings: [UnsafeMutablePointer<CChar>] = []
        func cString(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar> {
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            bytes.withUnsafeBufferPointer { buffer in
                for (index, byte) in buffer.enumerated() { pointer[index] = CChar(bitPattern: byte) }
            }
            pointer[bytes.count] = 0
            strings.append(pointer)
            return pointer
        }
        var flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | MHD_USE_ERROR_LOG.rawValue | MHD_USE_ITC.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue
        if let tls = configuration.tls {
            flags |= MHD_USE_TLS.rawValue
            options.append(MHD_OptionItem(option: .HTTPS_MEM_KEY, value: 0, ptr_value: cString(tls.privateKeyPEM)))
            options.append(MHD_OptionItem(option: .HTTPS_MEM_CERT, value: 0, ptr_value: cString(tls.certificateChainPEM)))
            options.append(MHD_OptionItem(option: .HTTPS_PRIORITIES, value: 0, ptr_value: cString(Array(tls.priorities.utf8))))
            if let clientCAs = tls.clientCAsPEM {
                // libmicrohttpd asks for a client certificate only when it has a trust list. An empty one (a PEM
                // holding no certificate, which GnuTLS loads as zero CAs) asks for any certificate and names no CA.
                let trust = clientCAs.isEmpty ? Array("# no CA: any client certificate\n".utf8) : clientCAs
                options.append(MHD_OptionItem(option: .HTTPS_MEM_TRUST, value: 0, ptr_value: cString(trust)))
            }
        }
        options.append(option(.END, 0))

        // Internal polling threads on epoll (with an inter-thread channel, so that a TLS reload can quiesce it);
        // libmicrohttpd's error log goes to `logSink`.
        let daemon = options.withUnsafeMutableBufferPointer { buffer in
            CMicroHTTPD_start_daemon(
                UInt32(flags),
                accessHandler, contextPointer,
                requestCompleted, contextPointer,
                requestStarted, contextPointer,
                connectionNotified, contextPointer,
                logSink,
                buffer.baseAddress
            )
        }
        guard let daemon else {
            // libmicrohttpd closes `daemonFD` on some failure paths and not on others: never close it here (it
            // could be another thread's descriptor by now). The caller decides about the listen socket itself:
            // a failed start stops listening, a failed TLS reload keeps the running daemon's socket.
            for pointer in strings { pointer.deallocate() }
            CallbackContext.fromOpaque(contextPointer, as: ServerContext.self).release()
            logSink.deinitialize(count: 1)
            logSink.deallocate()
            throw HTTPServerError(
                code: .daemonStartFailed,
                message: "libmicrohttpd did not start on \(describe(host: configuration.host)):\(configuration.port)"
                    + (context.startupMessage.map { ": \($0)" } ?? ""),
                operation: "MHD_start_daemon"
            )
        }
        context.startupFinished()
        var port = Int(CMicroHTTPD_bound_port(daemon))
        if port == 0 { port = ListenSocket.boundPort(listenFD) }
        boundPort.store(port, ordering: .releasing)
        logger.info(
            "HTTP server listening",
            metadata: [
                "address": "\(describe(host: configuration.host)):\(port)",
                "threads": "\(configuration.threads)",
            ]
        )
        return DaemonParts(daemon: daemon, context: .fromOpaque(contextPointer), logSink: logSink, strings: strings)
    }
}

/// What a running server owns. Only touched under `HTTPServer.lifecycle`.
private struct Running {
    var daemon: DaemonParts
    /// Our own descriptor of the listen socket; each daemon gets a duplicate, so TLS reloads keep the socket.
    let listenFD: Int32
    var tls: HTTPServer.TLSConfiguration?
}

/// A daemon replaced by a TLS reload: quiesced (no longer accepting), finishing its connections.
private struct Retiring: Sendable {
    let parts: DaemonParts
    /// The daemon's duplicate of the listen socket, handed back by `MHD_quiesce_daemon` (-1 if it failed).
    let quiescedFD: Int32

    func stop() {
        parts.stop()
        if quiescedFD >= 0 { close(quiescedFD) }
    }
}

/// One libmicrohttpd daemon and what its callbacks use.
struct DaemonParts: @unchecked Sendable {
    // @unchecked: the pointers are owned by this value's holder and freed once, in `stop()`, after the daemon's
    // threads are gone.
    let daemon: OpaquePointer
    /// Retained for libmicrohttpd's callbacks; released after `MHD_stop_daemon`.
    let context: Unmanaged<ServerContext>
    let logSink: UnsafeMutablePointer<CMicroHTTPD_Logger>
    let strings: [UnsafeMutablePointer<CChar>]

    func stop() {
        // libmicrohttpd must not stop with a suspended connection: answer what is still owed first.
        context.takeUnretainedValue().answerOwed()
        MHD_stop_daemon(daemon)
        // No callback can run any more: the context, the log sink and the credentials may go.
        context.takeUnretainedValue().headerDeadlines?.stop()
        context.release()
        logSink.deinitialize(count: 1)
        logSink.deallocate()
        for pointer in strings { pointer.deallocate() }
    }
}

private func option(_ option: MHD_OPTION, _ value: Int) -> MHD_OptionItem {
    MHD_OptionItem(option: option, value: value, ptr_value: nil)
}

private func describe(host: String) -> String {
    host.isEmpty ? "[::]" : host.contains(":") ? "[\(host)]" : host
}
