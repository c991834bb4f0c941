public import HTTPServer

/// A ``ClientCertificateVerifier`` over a GnuTLS CA bundle.
public struct CertificateVerifier: ClientCertificateVerifier {
    /// The parsed CA bundle; it does not change (a new bundle means a new verifier).
    public let authority: CertificateAuthority

    /// Wraps an already-parsed bundle.
    public init(_ authority: CertificateAuthority) { self.authority = authority }

    /// Throws when the chain does not verify against the bundle.
    public func verify(chain: [[UInt8]]) throws -> VerifiedClient {
        let identity = try authority.verify(chain: chain)
        return VerifiedClient(commonName: identity.commonName, organizations: identity.organizations)
    }
}
