#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The two API groups the adapter serves.
public enum MetricsAPIGroup: String, Sendable, Hashable, CaseIterable, Codable {
    case custom = "custom.metrics.k8s.io"
    case external = "external.metrics.k8s.io"

    /// Served versions, preferred (highest APIService `versionPriority`) first.
    public var versions: [MetricsAPIVersion] {
        switch self {
        case .custom: [.v1beta2, .v1beta1]
        case .external: [.v1beta1]
        }
    }

    /// The first of ``versions``.
    public var preferredVersion: MetricsAPIVersion { versions[0] }

    /// `group/version`.
    public func groupVersion(_ version: MetricsAPIVersion) -> String { "\(rawValue)/\(version.rawValue)" }
}

/// The API versions served; `v1beta2` exists only for custom metrics.
public enum MetricsAPIVersion: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case v1beta1
    case v1beta2

    /// Version order: `v1beta1` before `v1beta2`.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A qualified resource as it appears in paths and discovery names: `pods`, `nodes`, `deployments.apps`.
public struct GroupResource: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Empty for the core group.
    public var group: String
    /// The plural resource name, lower case (`pods`).
    public var resource: String

    /// Unchecked; ``init(parsing:)`` splits `resource.group` text.
    public init(group: String = "", resource: String) {
        self.group = group
        self.resource = resource
    }

    /// `schema.ParseGroupResource`: the group is everything after the first dot.
    public init(parsing text: some StringProtocol) {
        if let dot = text.firstIndex(of: ".") {
            self.init(group: String(text[text.index(after: dot)...]), resource: String(text[..<dot]))
        } else {
            self.init(resource: String(text))
        }
    }

    public static let pods = GroupResource(resource: "pods")
    public static let nodes = GroupResource(resource: "nodes")
    public static let namespaces = GroupResource(resource: "namespaces")

    /// `resource` or `resource.group`.
    public var description: String { group.isEmpty ? resource : "\(resource).\(group)" }
}

/// Encoding shared by every document: no `\/` escapes (Go writes `/` plainly), optional sorted keys for tests.
public enum APIJSON {
    /// `sortedKeys` makes the bytes stable across runs (the API handler and the tests use it).
    public static func makeEncoder(sortedKeys: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = sortedKeys ? [.withoutEscapingSlashes, .sortedKeys] : [.withoutEscapingSlashes]
        return encoder
    }

    /// The response body bytes.
    public static func encode(_ value: some Encodable, sortedKeys: Bool = false) throws -> [UInt8] {
        Array(try makeEncoder(sortedKeys: sortedKeys).encode(value))
    }
}

/// Coding keys from strings, for documents whose keys depend on the API version.
struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// `metadata: {}` (an empty `ListMeta`/`ObjectMeta`).
struct EmptyObject: Codable, Hashable, Sendable {
    init() {}
    init(from decoder: any Decoder) throws { _ = try decoder.container(keyedBy: DynamicKey.self) }
    func encode(to encoder: any Encoder) throws { _ = encoder.container(keyedBy: DynamicKey.self) }
}

extension KeyedEncodingContainer where Key == DynamicKey {
    mutating func encode(_ date: Date, rfc3339 key: String) throws {
        try encode(RFC3339.string(from: date), forKey: DynamicKey(key))
    }

    mutating func encodeTypeMeta(kind: String, apiVersion: String) throws {
        try encode(kind, forKey: DynamicKey("kind"))
        try encode(apiVersion, forKey: DynamicKey("apiVersion"))
    }
}

extension KeyedDecodingContainer where Key == DynamicKey {
    func decodeRFC3339(_ key: String) throws -> Date {
        let text = try decode(String.self, forKey: DynamicKey(key))
        guard let date = RFC3339.date(from: text) else {
            throw DecodingError.dataCorruptedError(
                forKey: DynamicKey(key), in: self, debugDescription: "not an RFC 3339 time: \(text)")
        }
        return date
    }

    func expectTypeMeta(kind: String, apiVersions: [String]) throws -> String {
        let foundKind = try decode(String.self, forKey: DynamicKey("kind"))
        let apiVersion = try decode(String.self, forKey: DynamicKey("apiVersion"))
        guard foundKind == kind, apiVersions.contains(apiVersion) else {
            throw DecodingError.dataCorruptedError(
                forKey: DynamicKey("kind"), in: self,
                debugDescription: "expected \(kind) in \(apiVersions), found \(foundKind) in \(apiVersion)")
        }
        return apiVersion
    }
}
