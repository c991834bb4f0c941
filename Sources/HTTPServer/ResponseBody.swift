/// An immutable run of bytes that libmicrohttpd sends straight from its memory.
///
/// The exporter renders `/metrics` once per tick into one `ResponseBody` and hands the same instance to every
/// scrape: the server retains it for as long as libmicrohttpd may read it and sends from it without copying, so a
/// scrape costs no allocation or copy proportional to the body.
///
/// The bytes are written only while the initializer runs and freed only in `deinit`, when no reference (the
/// caller's or libmicrohttpd's) remains; between the two they are read-only, which is what makes sharing the
/// instance across threads safe and the `@unchecked Sendable` sound.
public final class ResponseBody: @unchecked Sendable {
    /// Never nil, never written after `init`. At least one byte is allocated so that libmicrohttpd always gets a
    /// non-null buffer, even for an empty body.
    private let storage: UnsafeMutableRawBufferPointer

    /// Number of body bytes.
    public let count: Int

    /// A body with a copy of `bytes`.
    public init(_ bytes: some Collection<UInt8>) {
        let count = bytes.count
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
        storage.copyBytes(from: bytes)
        self.count = count
    }

    /// A body with the UTF-8 bytes of `string`.
    public convenience init(string: String) {
        self.init(string.utf8)
    }

    /// A body written in place: `initializer` gets `capacity` bytes of uninitialized memory, writes the body at
    /// its start and returns how many bytes it wrote. Lets a renderer produce the body without an intermediate
    /// array. The memory stays `capacity` bytes even if fewer are used.
    public init(
        unsafeUninitializedCapacity capacity: Int,
        initializingWith initializer: (UnsafeMutableRawBufferPointer) throws -> Int
    ) rethrows {
        precondition(capacity >= 0, "ResponseBody capacity must not be negative")
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 16)
        let written: Int
        do {
            written = try initializer(UnsafeMutableRawBufferPointer(rebasing: storage[0..<capacity]))
        } catch {
            storage.deallocate()
            throw error
        }
        precondition((0...capacity).contains(written), "ResponseBody initializer wrote \(written) of \(capacity) bytes")
        self.storage = storage
        self.count = written
    }

    deinit {
        storage.deallocate()
    }

    /// A shared empty body.
    public static let empty = ResponseBody(EmptyCollection<UInt8>())

    /// Calls `body` with the bytes; the pointer must not escape.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// A copy of the bytes, for tests and logging.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// Start of the bytes for libmicrohttpd, which takes a mutable pointer but only reads through it.
    var baseAddressForLibrary: UnsafeMutableRawPointer {
        storage.baseAddress!
    }
}
