import AdapterSources
import AdapterStore
import AggregatedAPI
import HTTPServer

extension FuzzTargets {
    /// The adapter's front-proxy identity: `kube-system/extension-apiserver-authentication`'s header names (JSON
    /// lists, as the ConfigMap holds them) and a request's `X-Remote-User` / `X-Remote-Group` / `X-Remote-Extra-*`
    /// headers into a user, and the request stripped of identity headers before anything else reads it.
    ///
    /// The input is the ConfigMap's data as `key=value` lines, a blank line, then the request's `name: value` header
    /// lines (no blank line: headers only, with the default header names). Once stripped, a request names no user:
    /// nothing downstream can read a forged identity.
    static let identityHeaders = FuzzTarget("identity-headers", maxLength: 4096) { (raw) throws(FuzzFinding) in
        let text = String(decoding: raw, as: UTF8.self)
        var data: [String: String] = [:]
        var headerText = Substring(text)
        if let blank = text.firstRange(of: "\n\n") {
            for line in text[..<blank.lowerBound].split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                data[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            headerText = text[blank.upperBound...]
        }
        let published = AuthenticationConfigWatcher.settings(data)
        let settings = RequestHeaderSettings(
            verifier: nil, allowedNames: published.allowedNames, usernameHeaders: published.usernameHeaders,
            groupHeaders: published.groupHeaders, extraHeaderPrefixes: published.extraHeaderPrefixes)
        var headers: [(name: String, value: String)] = []
        for line in headerText.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })))
        }
        let request = HTTPRequest(method: "GET", path: "/apis/custom.metrics.k8s.io/v1beta2", headers: headers)
        if let user = Authenticator.headerUser(request, settings) {
            try check(!user.name.isEmpty, "a user without a name")
        }
        let authenticator = Authenticator(requestHeader: settings, clientCA: nil, tokens: nil)
        let stripped = authenticator.strippingIdentityHeaders(request)
        if let user = Authenticator.headerUser(stripped, settings) {
            throw FuzzFinding("after stripping the identity headers the request still names \(user)")
        }
        for header in stripped.headers {
            try check(!Authenticator.isIdentityHeader(header.name, settings), "the identity header \(header.name) was kept")
        }
    }
}
