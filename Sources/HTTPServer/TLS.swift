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
        /// The subject's first CN; empty when it has none (Kubernetes takes it as the user name).
        public var commonName: String
        /// The subject's O values in order (Kubernetes takes them as the groups).
        public var organizations: [String]
    }

    /// Throws ``HTTPServerError/Code/invalidConfiguration`` when GnuTLS loads no certificate from `pem`.
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

/// A CA and a serving certificate made here with GnuTLS (ECDSA P-256), for a server that has no certificate given:
/// the adapter's bootstrap into a Secret, and local development.
public struct GeneratedCertificates: Sendable, Equatable {
    /// The CA's self-signed certificate: what clients trust (an APIService `caBundle`).
    public var caCertificatePEM: [UInt8]
    /// The CA's key, unencrypted PKCS#8 PEM.
    public var caKeyPEM: [UInt8]
    /// The serving certificate, signed by the CA.
    public var certificatePEM: [UInt8]
    /// The serving certificate's key, unencrypted PKCS#8 PEM.
    public var keyPEM: [UInt8]

    /// A fresh CA (`caName`) and a serving certificate for `hosts` (DNS names and IP literals), valid for
    /// `validDays` from an hour ago.
    public static func generate(caName: String, hosts: [String], validDays: Int = 365) throws -> GeneratedCertificates {
        let now = Int(time(nil))
        let notBefore = now - 3600
        let notAfter = now + validDays * 86400
        let caKey = try PrivateKey()
        let ca = try X509Builder(commonName: caName, key: caKey, notBefore: notBefore, notAfter: notAfter)
        try ca.check(gnutls_x509_crt_set_basic_constraints(ca.certificate, 1, -1), "CA basic constraints")
        try ca.check(gnutls_x509_crt_set_key_usage(ca.certificate, UInt32(GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN)), "CA key usage")
        try ca.sign(issuer: ca.certificate, issuerKey: caKey)

        let serverKey = try PrivateKey()
        let server = try X509Builder(commonName: hosts.first ?? "localhost", key: serverKey, notBefore: notBefore, notAfter: notAfter)
        try server.check(gnutls_x509_crt_set_basic_constraints(server.certificate, 0, -1), "basic constraints")
        try server.check(gnutls_x509_crt_set_key_usage(server.certificate, UInt32(GNUTLS_KEY_DIGITAL_SIGNATURE)), "key usage")
        try server.check(gnutls_x509_crt_set_key_purpose_oid(server.certificate, "1.3.6.1.5.5.7.3.1", 0), "extended key usage")
        for host in hosts {
            if let ip = IPAddressBytes(host) {
                try ip.bytes.withUnsafeBytes { raw in
                    try server.check(
                        gnutls_x509_crt_set_subject_alt_name(
                            server.certificate, GNUTLS_SAN_IPADDRESS, raw.baseAddress, UInt32(raw.count), UInt32(GNUTLS_FSAN_APPEND)),
                        "IP subject alternative name")
                }
            } else {
                try server.check(
                    gnutls_x509_crt_set_subject_alt_name(
                        server.certificate, GNUTLS_SAN_DNSNAME, host, UInt32(host.utf8.count), UInt32(GNUTLS_FSAN_APPEND)),
                    "DNS subject alternative name")
            }
        }
        try server.sign(issuer: ca.certificate, issuerKey: caKey)
        return GeneratedCertificates(
            caCertificatePEM: try ca.pem(), caKeyPEM: try caKey.pem(), certificatePEM: try server.pem(), keyPEM: try serverKey.pem())
    }
}

/// An ECDSA P-256 private key.
private final class PrivateKey {
    let key: gnutls_x509_privkey_t

    init() throws {
        var key: gnutls_x509_privkey_t?
        guard gnutls_x509_privkey_init(&key) == GNUTLS_E_SUCCESS, let key else {
            throw HTTPServerError(code: .invalidConfiguration, message: "GnuTLS could not allocate a key")
        }
        self.key = key
        let bits = gnutls_sec_param_to_pk_bits(GNUTLS_PK_ECDSA, GNUTLS_SEC_PARAM_HIGH)
        let status = gnutls_x509_privkey_generate2(key, GNUTLS_PK_ECDSA, bits, 0, nil, 0)
        guard status == GNUTLS_E_SUCCESS else {
            throw HTTPServerError(code: .invalidConfiguration, message: "key generation failed: \(String(cString: gnutls_strerror(status)))")
        }
    }

    deinit { gnutls_x509_privkey_deinit(key) }

    func pem() throws -> [UInt8] {
        var datum = gnutls_datum_t()
        let status = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, nil, UInt32(GNUTLS_PKCS_PLAIN.rawValue), &datum)
        guard status == GNUTLS_E_SUCCESS, let data = datum.data else {
            throw HTTPServerError(code: .invalidConfiguration, message: "key export failed: \(String(cString: gnutls_strerror(status)))")
        }
        defer { free(data) }
        return Array(UnsafeBufferPointer(start: data, count: Int(datum.size)))
    }
}

private final class X509Builder {
    let certificate: gnutls_x509_crt_t

    init(commonName: String, key: PrivateKey, notBefore: Int, notAfter: Int) throws {
        var certificate: gnutls_x509_crt_t?
        guard gnutls_x509_crt_init(&certificate) == GNUTLS_E_SUCCESS, let certificate else {
            throw HTTPServerError(code: .invalidConfiguration, message: "GnuTLS could not allocate a certificate")
        }
        self.certificate = certificate
        try check(gnutls_x509_crt_set_version(certificate, 3), "version")
        try check(gnutls_x509_crt_set_key(certificate, key.key), "public key")
        var serial = [UInt8](repeating: 0, count: 16)
        try check(gnutls_rnd(GNUTLS_RND_NONCE, &serial, serial.count), "serial")
        serial[0] &= 0x7F
        try check(gnutls_x509_crt_set_serial(certificate, serial, serial.count), "serial")
        try check(gnutls_x509_crt_set_activation_time(certificate, notBefore), "activation time")
        try check(gnutls_x509_crt_set_expiration_time(certificate, notAfter), "expiration time")
        try check(
            gnutls_x509_crt_set_dn_by_oid(certificate, CGnuTLS_oid_common_name(), 0, commonName, UInt32(commonName.utf8.count)),
            "subject")
        var keyID = [UInt8](repeating: 0, count: 64)
        var size = keyID.count
        if gnutls_x509_crt_get_key_id(certificate, 0, &keyID, &size) == GNUTLS_E_SUCCESS {
            try check(gnutls_x509_crt_set_subject_key_id(certificate, keyID, size), "subject key id")
        }
    }

    deinit { gnutls_x509_crt_deinit(certificate) }

    func check(_ status: Int32, _ what: String) throws {
        guard status >= 0 else {
            throw HTTPServerError(code: .invalidConfiguration, message: "certificate \(what): \(String(cString: gnutls_strerror(status)))")
        }
    }

    func sign(issuer: gnutls_x509_crt_t, issuerKey: PrivateKey) throws {
        if issuer != certificate {
            var keyID = [UInt8](repeating: 0, count: 64)
            var size = keyID.count
            if gnutls_x509_crt_get_subject_key_id(issuer, &keyID, &size, nil) == GNUTLS_E_SUCCESS {
                try check(gnutls_x509_crt_set_authority_key_id(certificate, keyID, size), "authority key id")
            }
        }
        try check(gnutls_x509_crt_sign2(certificate, issuer, issuerKey.key, GNUTLS_DIG_SHA256, 0), "signature")
    }

    func pem() throws -> [UInt8] {
        var datum = gnutls_datum_t()
        try check(gnutls_x509_crt_export2(certificate, GNUTLS_X509_FMT_PEM, &datum), "export")
        guard let data = datum.data else { return [] }
        defer { free(data) }
        return Array(UnsafeBufferPointer(start: data, count: Int(datum.size)))
    }
}

/// The bytes of an IPv4 or IPv6 literal, for an IP subject alternative name.
private struct IPAddressBytes {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }
}
