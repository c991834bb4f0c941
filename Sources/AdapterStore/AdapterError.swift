/// What went wrong in the adapter's environment: a bad flag or file, an unreadable credential, an unreachable
/// backend. Misuse traps instead.
public struct AdapterError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        public static let invalidConfiguration = Code(name: "invalidConfiguration")
        public static let credentialsUnreadable = Code(name: "credentialsUnreadable")
        public static let fileUnreadable = Code(name: "fileUnreadable")
        public static let backendFailed = Code(name: "backendFailed")
    }

    public var code: Code
    public var message: String
    /// `errno` where a system call failed.
    public var systemErrno: Int32?

    public init(code: Code, message: String, systemErrno: Int32? = nil) {
        self.code = code
        self.message = message
        self.systemErrno = systemErrno
    }

    public var description: String { message }
}
