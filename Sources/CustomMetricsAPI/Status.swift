/// `metav1.Status`, the body of every error response; built the way apimachinery's `apierrors` constructors build it.
public struct Status: Sendable, Hashable, Codable, Error, CustomStringConvertible {
    /// `details`: which object the error is about, and the causes.
    public struct Details: Sendable, Hashable, Codable {
        /// One `details.causes[]` entry.
        public struct Cause: Sendable, Hashable, Codable {
            /// Serialized as `reason`.
            public var type: String?
            /// The cause in words.
            public var message: String?
            /// The request field at fault (`metadata.name`), where one is.
            public var field: String?

            /// Nil fields are left out.
            public init(type: String? = nil, message: String? = nil, field: String? = nil) {
                self.type = type
                self.message = message
                self.field = field
            }

            enum CodingKeys: String, CodingKey {
                case type = "reason"
                case message, field
            }
        }

        /// The object's name; nil (left out) when empty.
        public var name: String?
        /// The object's API group; nil (left out) when empty.
        public var group: String?
        /// The object's resource or kind; nil (left out) when empty.
        public var kind: String?
        /// Nil (left out) when empty.
        public var causes: [Cause]?

        /// Empty strings and an empty `causes` become nil, so they are left out as Go's `omitempty` does.
        public init(name: String? = nil, group: String? = nil, kind: String? = nil, causes: [Cause]? = nil) {
            self.name = name.flatMap { $0.isEmpty ? nil : $0 }
            self.group = group.flatMap { $0.isEmpty ? nil : $0 }
            self.kind = kind.flatMap { $0.isEmpty ? nil : $0 }
            self.causes = causes.flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    /// `Failure` for every error.
    public var status: String
    /// The sentence a client shows (`kubectl` prints it).
    public var message: String
    /// `NotFound`, `BadRequest`, `Unauthorized`, `Forbidden`, `InternalError`, …
    public var reason: String
    /// The HTTP status code; the response must use the same one.
    public var code: Int
    /// Nil leaves the field out.
    public var details: Details?

    /// Prefer the static constructors, which build each error the way apimachinery does.
    public init(message: String, reason: String, code: Int, details: Details? = nil, status: String = "Failure") {
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
        self.details = details
    }

    /// 404 for a metric the adapter does not serve for that resource (custom-metrics-apiserver's
    /// `NewMetricNotFoundError`).
    public static func metricNotFound(_ metric: String, for resource: GroupResource) -> Status {
        Status(message: "the server could not find the metric \(metric) for \(resource)", reason: "NotFound", code: 404)
    }

    /// 404 for a metric missing for one named object (`NewMetricNotFoundForError`).
    public static func metricNotFound(_ metric: String, for resource: GroupResource, named name: String) -> Status {
        Status(
            message: "the server could not find the metric \(metric) for \(resource) \(name)", reason: "NotFound",
            code: 404)
    }

    /// 404 for an external metric the adapter does not serve.
    public static func externalMetricNotFound(_ metric: String) -> Status {
        Status(message: "the server could not find the external metric \(metric)", reason: "NotFound", code: 404)
    }

    /// 404 for a path no route matches: the API server's own body, with its empty `details`.
    public static let pathNotFound = Status(
        message: "the server could not find the requested resource", reason: "NotFound", code: 404, details: Details())

    /// 400 (`NewBadRequest`).
    public static func badRequest(_ message: String) -> Status {
        Status(message: message, reason: "BadRequest", code: 400)
    }

    /// 401 (`NewUnauthorized`; the API server's authentication filter says `Unauthorized`).
    public static func unauthorized(_ message: String = "Unauthorized") -> Status {
        Status(message: message.isEmpty ? "not authorized" : message, reason: "Unauthorized", code: 401)
    }

    /// 403 for a resource request, worded like the API server's authorization filter
    /// (`User "u" cannot get resource "pods/m" in API group "g" in the namespace "ns"`), built by `NewForbidden`.
    public static func forbidden(
        user: String, verb: String, group: String, resource: String, subresource: String = "", namespace: String = "",
        name: String = "", reason: String = ""
    ) -> Status {
        let qualified = subresource.isEmpty ? resource : "\(resource)/\(subresource)"
        var text = "User \(goQuote(user)) cannot \(verb) resource \(goQuote(qualified)) in API group \(goQuote(group))"
        text += namespace.isEmpty ? " at the cluster scope" : " in the namespace \(goQuote(namespace))"
        if !reason.isEmpty { text += ": \(reason)" }
        let gr = GroupResource(group: group, resource: resource)
        let message =
            name.isEmpty ? "\(gr) is forbidden: \(text)" : "\(gr) \(goQuote(name)) is forbidden: \(text)"
        return Status(
            message: message, reason: "Forbidden", code: 403,
            details: Details(name: name, group: group, kind: resource))
    }

    /// 403 for a non-resource path (`User "u" cannot get path "/apis"`).
    public static func forbidden(user: String, verb: String, path: String, reason: String = "") -> Status {
        var text = "User \(goQuote(user)) cannot \(verb) path \(goQuote(path))"
        if !reason.isEmpty { text += ": \(reason)" }
        return Status(message: "forbidden: \(text)", reason: "Forbidden", code: 403, details: Details())
    }

    /// 503 (`NewServiceUnavailable`): try again later.
    public static func serviceUnavailable(_ message: String) -> Status {
        Status(message: message, reason: "ServiceUnavailable", code: 503, details: Details())
    }

    /// 500 (`NewInternalError`): the cause is repeated in `details.causes`.
    public static func internalError(_ cause: String) -> Status {
        Status(
            message: "Internal error occurred: \(cause)", reason: "InternalError", code: 500,
            details: Details(causes: [Details.Cause(message: cause)]))
    }

    /// `CODE REASON: MESSAGE`, for logs.
    public var description: String { "\(code) \(reason): \(message)" }

    enum CodingKeys: String, CodingKey { case kind, apiVersion, metadata, status, message, reason, details, code }

    /// Adds `kind: Status`, `apiVersion: v1` and an empty `metadata`; empty fields and a 0 code are left out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("Status", forKey: .kind)
        try container.encode("v1", forKey: .apiVersion)
        try container.encode(EmptyObject(), forKey: .metadata)
        try container.encode(status, forKey: .status)
        if !message.isEmpty { try container.encode(message, forKey: .message) }
        if !reason.isEmpty { try container.encode(reason, forKey: .reason) }
        try container.encodeIfPresent(details, forKey: .details)
        if code != 0 { try container.encode(code, forKey: .code) }
    }

    /// Missing fields decode as empty (or 0, or nil).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decodeIfPresent(String.self, forKey: .status) ?? ""
        message = try container.decodeIfPresent(String.self, forKey: .message) ?? ""
        reason = try container.decodeIfPresent(String.self, forKey: .reason) ?? ""
        code = try container.decodeIfPresent(Int.self, forKey: .code) ?? 0
        details = try container.decodeIfPresent(Details.self, forKey: .details)
    }
}

/// Go's `%q` for the ASCII-printable strings these messages carry; other bytes are escaped as `\u`/`\x`.
func goQuote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
