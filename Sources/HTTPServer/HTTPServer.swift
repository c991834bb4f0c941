import CMicroHTTPD
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
        guard configuration.tls == nil else {
            throw HTTPServerError(
                code: .unsupported,
                message: "TLS is not implemented yet; remove the TLS configuration to serve plain HTTP"
            )
        }
        try lifecycle.withLock { current in
            precondition(current == nil, "HTTPServer.start() called while the server is running")
            current = try startDaemon()
            running.store(true, ordering: .releasing)
        }
    }

    /// Closes the listen socket and every connection and waits for the worker threads to finish. Does nothing if
    /// the server is not running; also runs on deinit.
    public func stop() {
        lifecycle.withLock { state in
            guard let current = state.take() else { return }
            running.store(false, ordering: .releasing)
            MHD_stop_daemon(current.daemon)
            // No callback can run any more: the context and the log sink may go.
            current.context.release()
            current.logSink.deinitialize(count: 1)
            current.logSink.deallocate()
            logger.info("HTTP server stopped", metadata: ["port": "\(port)"])
        }
    }

    private func startDaemon() throws -> Running {
        let listenFD = try ListenSocket.open(host: configuration.host, port: configuration.port)
        defer { close(listenFD) }
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
        options.append(option(.END, 0))

        // Internal polling threads on epoll; libmicrohttpd's error log goes to `logSink`.
        let flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | MHD_USE_ERROR_LOG.rawValue
        let daemon = options.withUnsafeMutableBufferPointer { buffer in
            CMicroHTTPD_start_daemon(
                UInt32(flags),
                accessHandler, contextPointer,
                requestCompleted, contextPointer,
                requestStarted, contextPointer,
                logSink,
                buffer.baseAddress
            )
        }
        guard let daemon else {
            shutdown(listenFD, Int32(SHUT_RDWR))
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
        return Running(daemon: daemon, context: .fromOpaque(contextPointer), logSink: logSink)
    }
}

/// What a running daemon owns. Only touched under `HTTPServer.lifecycle`.
private struct Running {
    let daemon: OpaquePointer
    /// Retained for libmicrohttpd's callbacks; released after `MHD_stop_daemon`.
    let context: Unmanaged<ServerContext>
    let logSink: UnsafeMutablePointer<CMicroHTTPD_Logger>
}

private func option(_ option: MHD_OPTION, _ value: Int) -> MHD_OptionItem {
    MHD_OptionItem(option: option, value: value, ptr_value: nil)
}

private func describe(host: String) -> String {
    host.isEmpty ? "[::]" : host.contains(":") ? "[\(host)]" : host
}
