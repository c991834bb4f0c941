import CGnuTLS
import Glibc

/// PEM credentials checked with GnuTLS before libmicrohttpd sees them, so that a bad certificate or a key that
/// does not match gives a clear error (and a reload keeps the previous pair).
enum TLSCredentials {
    /// Throws `invalidConfiguration` when the pair does not load; returns the leaf's expiry (Unix seconds) and
    /// activation time, for warnings.
    static func validate(certificateChainPEM: [UInt8], privateKeyPEM: [UInt8]) throws -> (notBefore: Int, notAfter: Int) {
        var credentials: gnutls_certificate_credentials_t?
        guard gnutls_certificate_allocate_credentials(&credentials) == GNUTLS_E_SUCCESS, let credentials else {
            throw HTTPServerError(code: .invalidConfiguration, message: "GnuTLS could not allocate credentials")
        }
        defer { gnutls_certificate_free_credentials(credentials) }
        let status = withDatum(certificateChainPEM) { cert in
            withDatum(privateKeyPEM) { key in
                gnutls_certificate_set_x509_key_mem2(credentials, cert, key, GNUTLS_X509_FMT_PEM, nil, 0)
            }
        }
        guard status >= 0 else {
            throw HTTPServerError(
                code: .invalidConfiguration,
                message: "the TLS certificate and key do not load: \(String(cString: gnutls_strerror(status)))")
        }
        let leaf = try Certificate(pem: certificateChainPEM)
        return (leaf.notBefore, leaf.notAfter)
    }
}

/// One X.509 certificate, parsed by GnuTLS.
struct Certificate {
    let notBefore: Int
    let notAfter: Int
    let commonName: String
    let organizations: [String]

    /// The first certificate of a PEM blob.
    init(pem: [UInt8]) throws {
        try self.init(bytes: pem, format: GNUTLS_X509_FMT_PEM)
    }

    init(der: [UInt8]) throws {
        try self.init(bytes: der, format: GNUTLS_X509_FMT_DER)
    }

    private init(bytes: [UInt8], format: gnutls_x509_crt_fmt_t) throws {
        var certificate: gnutls_x509_crt_t?
        guard gnutls_x509_crt_init(&certificate) == GNUTLS_E_SUCCESS, let certificate else {
            throw HTTPServerError(code: .invalidConfiguration, message: "GnuTLS could not allocate a certificate")
        }
        defer { gnutls_x509_crt_deinit(certificate) }
        let status = withDatum(bytes) { gnutls_x509_crt_import(certificate, $0, format) }
        guard status == GNUTLS_E_SUCCESS else {
            throw HTTPServerError(
                code: .invalidConfiguration, message: "not an X.509 certificate: \(String(cString: gnutls_strerror(status)))")
        }
        notBefore = gnutls_x509_crt_get_activation_time(certificate)
        notAfter = gnutls_x509_crt_get_expiration_time(certificate)
        commonName = Self.dnValues(certificate, oid: CGnuTLS_oid_common_name()).first ?? ""
        organizations = Self.dnValues(certificate, oid: CGnuTLS_oid_organization())
    }

    static func dnValues(_ certificate: gnutls_x509_crt_t, oid: UnsafePointer<CChar>?) -> [String] {
        guard let oid else { return [] }
        var values: [String] = []
        for index in 0..<64 {
            var size = 0
            let probe = gnutls_x509_crt_get_dn_by_oid(certificate, oid, UInt32(index), 0, nil, &size)
            guard probe == GNUTLS_E_SHORT_MEMORY_BUFFER, size > 0 else { break }
            var buffer = [UInt8](repeating: 0, count: size + 1)
            guard gnutls_x509_crt_get_dn_by_oid(certificate, oid, UInt32(index), 0, &buffer, &size) == GNUTLS_E_SUCCESS
            else { break }
            values.append(String(decoding: buffer.prefix(size).prefix { $0 != 0 }, as: UTF8.self))
        }
        return values
    }
}

/// A CA bundle that client certificate chains are verified against (GnuTLS trust list): the front proxy's
/// requestheader CA, or `--client-ca-file`. Built from PEM bytes, so a CA that changes at run time (a ConfigMap)
/// is simply a new value.
public final class CertificateAuthority: @unchecked Sendable {
    // @unchecked: the trust list is filled in init and only read afterwards; GnuTLS allows concurrent verification
    // against one list.
    private let list: gnutls_x509_trust_list_t
    /// How many CA certificates the bundle held.
    public let count: Int
    /// The bundle as given, for re-use (e.g. in a TLS CertificateRequest).
    public let pem: [UInt8]

    /// Who a verified chain's leaf certificate names.
    public struct Identity: Sendable, Hashable {
        public var commonName: String
        public var organizations: [String]
    }

    public init(pem: [UInt8]) throws {
        var list: gnutls_x509_trust_list_t?
        guard gnutls_x509_trust_list_init(&list, 0) == GNUTLS_E_SUCCESS, let list else {
            throw HTTPServerError(code: .invalidConfiguration, message: "GnuTLS could not allocate a trust list")
        }
        let added = withDatum(pem) { gnutls_x509_trust_list_add_trust_mem(list, $0, nil, GNUTLS_X509_FMT_PEM, 0, 0) }
        guard added > 0 else {
            gnutls_x509_trust_list_deinit(list, 1)
            throw HTTPServerError(
                code: .invalidConfiguration,
                message: added < 0
                    ? "the CA bundle does not load: \(String(cString: gnutls_strerror(added)))"
                    : "the CA bundle holds no certificate")
        }
        self.list = list
        count = Int(added)
        self.pem = pem
    }

    deinit {
        gnutls_x509_trust_list_deinit(list, 1)
    }

    /// Verifies `chain` (DER, leaf first) against this bundle, now: signatures, validity times, and the leaf's
    /// extended key usage when it has one (it must allow TLS client authentication). Throws with GnuTLS' reason.
    public func verify(chain: [[UInt8]]) throws -> Identity {
        guard !chain.isEmpty else {
            throw HTTPServerError(code: .certificateRejected, message: "no client certificate")
        }
        var certificates: [gnutls_x509_crt_t?] = []
        defer { for certificate in certificates { gnutls_x509_crt_deinit(certificate) } }
        for der in chain.prefix(16) {
            var certificate: gnutls_x509_crt_t?
            guard gnutls_x509_crt_init(&certificate) == GNUTLS_E_SUCCESS, let certificate else {
                throw HTTPServerError(code: .certificateRejected, message: "GnuTLS could not allocate a certificate")
            }
            certificates.append(certificate)
            let status = withDatum(der) { gnutls_x509_crt_import(certificate, $0, GNUTLS_X509_FMT_DER) }
            guard status == GNUTLS_E_SUCCESS else {
                throw HTTPServerError(
                    code: .certificateRejected,
                    message: "unreadable client certificate: \(String(cString: gnutls_strerror(status)))")
            }
        }
        var output: UInt32 = 0
        let purpose = CGnuTLS_kp_tls_www_client()
        var typedData = gnutls_typed_vdata_st(
            type: GNUTLS_DT_KEY_PURPOSE_OID,
            data: UnsafeMutableRawPointer(mutating: purpose)?.assumingMemoryBound(to: UInt8.self), size: 0)
        let status = certificates.withUnsafeMutableBufferPointer { buffer in
            gnutls_x509_trust_list_verify_crt2(
                list, buffer.baseAddress, UInt32(buffer.count), &typedData, 1, 0, &output, nil)
        }
        guard status == GNUTLS_E_SUCCESS else {
            throw HTTPServerError(
                code: .certificateRejected, message: "verification failed: \(String(cString: gnutls_strerror(status)))")
        }
        guard output == 0 else {
            var text = gnutls_datum_t()
            var reason = "not trusted"
            if gnutls_certificate_verification_status_print(output, GNUTLS_CRT_X509, &text, 0) == GNUTLS_E_SUCCESS,
                let data = text.data
            {
                reason = String(decoding: UnsafeBufferPointer(start: data, count: Int(text.size)), as: UTF8.self)
                freeGnuTLSMemory(data)
            }
            throw HTTPServerError(code: .certificateRejected, message: "client certificate rejected: \(reason)")
        }
        guard let leaf = certificates.first ?? nil else {
            throw HTTPServerError(code: .certificateRejected, message: "no client certificate")
        }
        return Identity(
            commonName: Certificate.dnValues(leaf, oid: CGnuTLS_oid_common_name()).first ?? "",
            organizations: Certificate.dnValues(leaf, oid: CGnuTLS_oid_organization()))
    }
}

/// The peer's certificate chain (DER, leaf first) of a TLS session; nil when there is none.
func peerCertificates(session: UnsafeMutableRawPointer?) -> [[UInt8]]? {
    guard let session else { return nil }
    var count: UInt32 = 0
    guard let peers = gnutls_certificate_get_peers(OpaquePointer(session), &count), count > 0 else { return nil }
    var chain: [[UInt8]] = []
    for index in 0..<Int(count) {
        let datum = peers[index]
        guard let data = datum.data else { continue }
        chain.append(Array(UnsafeBufferPointer(start: data, count: Int(datum.size))))
    }
    return chain.isEmpty ? nil : chain
}

/// Calls `body` with a datum over `bytes` (valid only during the call).
private func withDatum<Result>(_ bytes: [UInt8], _ body: (UnsafePointer<gnutls_datum_t>) -> Result) -> Result {
    var copy = bytes
    return copy.withUnsafeMutableBufferPointer { buffer in
        var datum = gnutls_datum_t(data: buffer.baseAddress, size: UInt32(buffer.count))
        return body(&datum)
    }
}

/// `gnutls_free` is a macro over a function pointer variable.
private func freeGnuTLSMemory(_ pointer: UnsafeMutableRawPointer) {
    free(pointer)
}
