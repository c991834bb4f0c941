import CCurl
import CGnuTLS
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What an ``HTTPConnection`` trusts and presents over `https`: a CA bundle, a client certificate and key, or no
/// verification at all.
///
/// curl's GnuTLS backend loads certificates and keys from paths only. Files given as paths are handed over as they
/// are (and read again on each new connection, so rotated files are picked up); PEM bytes (a kubeconfig's `-data`
/// fields) go into anonymous in-memory files, `/proc/self/fd/N`, so no key material reaches the disk. Either way the
/// PEM is parsed here first, so a bundle or key that does not load is a clear error at start, not a failed
/// handshake later.
public final class TLSMaterial: Sendable {
    /// A PEM file or PEM bytes.
    public enum Source: Sendable {
        /// A path, read now to check it and again by each new connection.
        case file(String)
        /// The PEM itself.
        case pem([UInt8])
    }

    /// The CA bundle's path for curl, nil for the system's bundle.
    public let caPath: String?
    /// The client certificate (chain) path, nil for none.
    public let certificatePath: String?
    /// The client key's path, nil for none.
    public let keyPath: String?
    /// `insecure-skip-tls-verify`: neither the chain nor the host name is checked.
    public let insecureSkipVerify: Bool
    private let descriptors: [Int32]

    /// Checks every PEM (the CA bundle: at least one certificate; the certificate and key: both or neither) and
    /// makes memory files for the ones given as bytes.
    public init(ca: Source? = nil, certificate: Source? = nil, key: Source? = nil, insecureSkipVerify: Bool = false)
        throws(HTTPTransferError)
    {
        guard (certificate == nil) == (key == nil) else {
            throw HTTPTransferError(.configuration, "a client certificate needs its key, and a key its certificate")
        }
        var descriptors: [Int32] = []
        func place(_ source: Source?, _ what: String, check: ([UInt8]) -> String?) throws(HTTPTransferError) -> String? {
            guard let source else { return nil }
            let bytes: [UInt8]
            switch source {
            case .file(let path):
                guard let read = Self.read(path) else {
                    throw HTTPTransferError(.configuration, "the \(what) \(path) cannot be read: \(String(cString: strerror(errno)))")
                }
                bytes = read
            case .pem(let pem):
                bytes = pem
            }
            if let problem = check(bytes) {
                throw HTTPTransferError(.configuration, "the \(what) does not load: \(problem)")
            }
            if case .file(let path) = source { return path }
            let fd = bytes.withUnsafeBytes { ccurl_memory_file("accelmetrics-tls", $0.baseAddress, $0.count) }
            guard fd >= 0 else {
                throw HTTPTransferError(.configuration, "the \(what) cannot be held in memory: \(String(cString: strerror(errno)))")
            }
            descriptors.append(fd)
            return "/proc/self/fd/\(fd)"
        }
        do throws(HTTPTransferError) {
            caPath = try place(ca, "CA bundle", check: Self.checkCertificates)
            certificatePath = try place(certificate, "client certificate", check: Self.checkCertificates)
            keyPath = try place(key, "client key", check: Self.checkKey)
        } catch {
            for fd in descriptors { close(fd) }
            throw error
        }
        self.insecureSkipVerify = insecureSkipVerify
        self.descriptors = descriptors
    }

    deinit {
        for fd in descriptors { close(fd) }
    }

    /// At most 1 MiB: a CA bundle or a key file is a few KiB.
    private static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while bytes.count <= 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes += buffer[..<n]
        }
        return bytes
    }

    /// nil when `pem` holds at least one X.509 certificate, else why not.
    static func checkCertificates(_ pem: [UInt8]) -> String? {
        var list: UnsafeMutablePointer<gnutls_x509_crt_t?>?
        var count: UInt32 = 0
        let status = withDatum(pem) { gnutls_x509_crt_list_import2(&list, &count, $0, GNUTLS_X509_FMT_PEM, 0) }
        if let list {
            for index in 0..<Int(count) { gnutls_x509_crt_deinit(list[index]) }
            free(list)
        }
        guard status >= 0 else { return String(cString: gnutls_strerror(status)) }
        return count == 0 ? "no certificate in it" : nil
    }

    /// nil when `pem` holds an unencrypted private key GnuTLS reads, else why not.
    static func checkKey(_ pem: [UInt8]) -> String? {
        var key: gnutls_x509_privkey_t?
        guard gnutls_x509_privkey_init(&key) == GNUTLS_E_SUCCESS else { return "no memory" }
        defer { gnutls_x509_privkey_deinit(key) }
        let status = withDatum(pem) { gnutls_x509_privkey_import2(key, $0, GNUTLS_X509_FMT_PEM, nil, 0) }
        return status >= 0 ? nil : String(cString: gnutls_strerror(status))
    }

    private static func withDatum<Result>(_ bytes: [UInt8], _ body: (UnsafePointer<gnutls_datum_t>) -> Result) -> Result {
        var copy = bytes
        return copy.withUnsafeMutableBufferPointer { buffer in
            var datum = gnutls_datum_t(data: buffer.baseAddress, size: UInt32(buffer.count))
            return body(&datum)
        }
    }
}
