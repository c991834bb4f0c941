/// Why the server could not do what it was asked: a listen address that does not parse or resolve, a port that is
/// taken, a configuration libmicrohttpd refuses.
///
/// A struct rather than an enum so that new failure kinds do not break callers that switch over it: match on
/// ``code``, show ``description``.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. Compare against the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The static member's name, as `invalidListenAddress`.
        public var description: String { name }

        /// `parseListenAddress` got something that is not `[host]:port`.
        public static let invalidListenAddress = Code("invalidListenAddress")
        /// A configuration value is out of range.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The host name did not resolve (`getaddrinfo`).
        public static let addressResolution = Code("addressResolution")
        /// Creating, binding or listening on the socket failed; `errno` tells why (`EADDRINUSE`, `EACCES`, …).
        public static let bindFailed = Code("bindFailed")
        /// libmicrohttpd refused to start; its own explanation went to the logger.
        public static let daemonStartFailed = Code("daemonStartFailed")
        /// The configuration asks for something this build does not do yet (TLS).
        public static let unsupported = Code("unsupported")
        /// A client certificate chain did not verify against a CA bundle.
        public static let certificateRejected = Code("certificateRejected")
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence for people: what was attempted and on what.
    public var message: String
    /// The `errno` value behind the failure, where a system call failed.
    public var systemErrno: Int32?
    /// The operation that failed (`"bind"`, `"getaddrinfo"`, `"MHD_start_daemon"`).
    public var operation: String?
    /// The file in this module that raised the error.
    public var file: String
    /// The line in ``file`` that raised the error.
    public var line: Int

    /// `file` and `line` default to the call site.
    public init(
        code: Code,
        message: String,
        systemErrno: Int32? = nil,
        operation: String? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.systemErrno = systemErrno
        self.operation = operation
        self.file = file
        self.line = line
    }

    /// `HTTPServerError.CODE: MESSAGE`, then the operation and the `errno` text in parentheses where known.
    public var description: String {
        var text = "HTTPServerError.\(code): \(message)"
        if let operation {
            text += " (\(operation)"
            if let systemErrno {
                text += ": \(errnoDescription(systemErrno))"
            }
            text += ")"
        } else if let systemErrno {
            text += " (\(errnoDescription(systemErrno)))"
        }
        return text
    }
}
