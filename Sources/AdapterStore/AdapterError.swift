/// What went wrong in the adapter's environment: a bad flag or file, an unreadable credential, an unreachable
/// backend. Misuse traps instead.
public struct AdapterError: Error, Sendable, CustomStringConvertible {
    /// The failure's kind; `description` is its name (`invalidConfiguration`, …), for logs.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The code's name as declared.
        public var description: String { name }

        /// A flag or setting that cannot be used (an exporter target that is not `host:port`, a Prometheus URL).
        public static let invalidConfiguration = Code(name: "invalidConfiguration")
        /// A password or bearer-token file that cannot be read at scrape time.
        public static let credentialsUnreadable = Code(name: "credentialsUnreadable")
        /// A configuration or certificate file that cannot be read; `systemErrno` says why.
        public static let fileUnreadable = Code(name: "fileUnreadable")
        /// Prometheus answered, but not with a usable query result.
        public static let backendFailed = Code(name: "backendFailed")
    }

    /// What kind of failure; callers branch on this, never on the message.
    public var code: Code
    /// One sentence for the operator, naming the flag, file or target.
    public var message: String
    /// `errno` where a system call failed.
    public var systemErrno: Int32?

    /// `systemErrno` only where a system call failed.
    public init(code: Code, message: String, systemErrno: Int32? = nil) {
        self.code = code
        self.message = message
        self.systemErrno = systemErrno
    }

    /// The ``message`` alone.
    public var description: String { message }
}
