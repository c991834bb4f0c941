public import Foundation
public import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// scripts/fake-apiserver.py on a port of its own choosing, seeded with objects, tokens and rules (the script's
/// header documents the seed), driven through its `/fake/...` control calls.
///
/// Python keeps the SIGTERM mask Foundation gives children, so it is stopped with SIGKILL.
public final class FakeAPIServer: @unchecked Sendable {
    // Safe: every stored property is immutable; the process is a ManagedProcess.

    /// The running script (its log, its pid).
    public let process: ManagedProcess

    /// The port it printed once it listened.
    public let port: Int

    /// `http` or `https` (`--tls`, self-signed: clients skip verification or trust its certificate).
    public let scheme: String

    /// Where the seed (and any kubeconfig written for it) lives.
    public let directory: TemporaryDirectory

    /// Starts the server with `seed` (`objects`, `tokens`, `allow`, …) and the script's `arguments`; waits (10 s at
    /// most) for the port it prints on its first line.
    public init(seed: [String: Any], arguments: [String] = [], tls: Bool = false) throws {
        directory = TemporaryDirectory(prefix: "accel-apiserver")
        let seedFile = try directory.writeJSON("seed.json", seed)
        process = try ManagedProcess(
            "/usr/bin/python3", [PackagePaths.file("scripts/fake-apiserver.py").path, "--seed", seedFile.path] + arguments)
        process.stopSignal = SIGKILL
        port = Int(try process.waitFor(#"^(\d+)\n"#, in: .stdout, timeout: 10)) ?? 0
        scheme = tls ? "https" : "http"
    }

    /// A server holding just these objects.
    public convenience init(objects: [[String: Any]]) throws {
        try self.init(seed: ["objects": objects])
    }

    deinit { stop() }

    /// `scheme://127.0.0.1:port`.
    public var url: String { "\(scheme)://127.0.0.1:\(port)" }

    /// A kubeconfig in this server's directory pointing at it with a bearer token.
    public func kubeconfig(user: String, token: String, namespace: String? = nil) throws -> URL {
        try writeKubeconfig(in: directory, server: url, user: user, token: token, namespace: namespace)
    }

    /// A control call (`/fake/objects`, `/fake/drop-watches`, `/fake/fail?count=2`, …) with curl; returns the JSON
    /// answer (empty when there is none). A call the server refuses (curl fails) is an issue in the calling test.
    @discardableResult
    public func control(
        _ method: String, _ path: String, _ body: [String: Any]? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> [String: Any] {
        var arguments = ["-sS", "-f", "-k", "-m", "10", "-X", method, "\(url)\(path)"]
        if let body {
            let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", json]
        }
        let (out, err, status) = try runProgram("/usr/bin/curl", arguments, sourceLocation: sourceLocation)
        #expect(status == 0, "\(method) \(path): \(err)", sourceLocation: sourceLocation)
        return (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    /// Kills the server and removes its files (idempotent; `deinit` does it otherwise).
    public func stop() {
        process.stop()
        directory.remove()
    }
}

/// Writes `kubeconfig` into `directory`: one cluster at `server`, one user with a bearer `token`, one context
/// (`test`) joining them, with `namespace` when given.
public func writeKubeconfig(
    in directory: TemporaryDirectory, name: String = "kubeconfig", server: String, user: String, token: String,
    namespace: String? = nil
) throws -> URL {
    let namespaceField = namespace.map { ", namespace: \($0)" } ?? ""
    return try directory.write(
        name,
        """
        apiVersion: v1
        kind: Config
        current-context: test
        clusters: [{name: cluster, cluster: {server: "\(server)"}}]
        users: [{name: \(user), user: {token: \(token)}}]
        contexts: [{name: test, context: {cluster: cluster, user: \(user)\(namespaceField)}}]
        """)
}
