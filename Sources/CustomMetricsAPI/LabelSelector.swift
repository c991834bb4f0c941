/// A parsed Kubernetes label selector, as the API server accepts it in `labelSelector` and `metricLabelSelector`.
///
/// The grammar, validation and matching follow apimachinery's `labels.Parse`: requirements joined by `,` (AND), each
/// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n` or `k<n`; keys are qualified names
/// (`example.com/name`), values are label values (possibly empty). The empty selector selects everything.
public struct LabelSelector: Sendable, Hashable, CustomStringConvertible {
    /// Requirements sorted by key (stable), as `labels.Parse` returns them.
    public let requirements: [Requirement]

    /// Selects every label set.
    public static let everything = LabelSelector(requirements: [])

    /// Requirements are sorted by key, keeping the given order among equal keys.
    public init(requirements: [Requirement]) {
        self.requirements = requirements.enumerated()
            .sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }
            .map(\.element)
    }

    /// Parses a selector string; whitespace between tokens is ignored.
    public init(parsing text: some StringProtocol) throws(LabelSelectorError) {
        var parser = LabelSelectorParser(String(text))
        self.init(requirements: try parser.parse())
    }

    /// True when it selects everything.
    public var isEverything: Bool { requirements.isEmpty }

    /// Whether every requirement holds for the label set.
    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { $0.matches(labels) }
    }

    /// The canonical text (`Selector.String()`), which parses back to an equal selector.
    public var description: String { requirements.map(\.description).joined(separator: ",") }

    /// One condition on one label.
    public struct Requirement: Sendable, Hashable, CustomStringConvertible {
        /// The operators of apimachinery's selector syntax; raw values are the `Operator` spellings
        /// (`doesNotExist` is `!key`, `greaterThan`/`lessThan` are written `>`/`<`).
        public enum Operator: String, Sendable, Hashable, CaseIterable {
            case equals = "="
            case doubleEquals = "=="
            case notEquals = "!="
            case `in` = "in"
            case notIn = "notin"
            case exists = "exists"
            case doesNotExist = "!"
            case greaterThan = "gt"
            case lessThan = "lt"
        }

        /// A qualified label name (`app`, `example.com/tier`), validated.
        public let key: String
        /// How ``values`` is compared with the label's value.
        public let `operator`: Operator
        /// Sorted and without duplicates; exactly one for the equality and comparison operators, none for
        /// `exists`/`doesNotExist`.
        public let values: [String]

        /// Validates like `labels.NewRequirement`.
        public init(key: String, operator: Operator, values: [String] = []) throws(LabelSelectorError) {
            try LabelSyntax.validateKey(key)
            let unique = Array(Set(values)).sorted()
            switch `operator` {
            case .in, .notIn:
                if unique.isEmpty {
                    throw LabelSelectorError("for 'in', 'notin' operators, values set can't be empty (key \"\(key)\")")
                }
            case .equals, .doubleEquals, .notEquals:
                if unique.count != 1 {
                    throw LabelSelectorError("exact-match compatibility requires one single value (key \"\(key)\")")
                }
            case .exists, .doesNotExist:
                if !unique.isEmpty {
                    throw LabelSelectorError("values set must be empty for exists and does not exist (key \"\(key)\")")
                }
            case .greaterThan, .lessThan:
                if unique.count != 1 {
                    throw LabelSelectorError("for 'Gt', 'Lt' operators, exactly one value is required (key \"\(key)\")")
                }
                if Int64(unique[0]) == nil {
                    throw LabelSelectorError(
                        "for 'Gt', 'Lt' operators, the value must be an integer: \"\(unique[0])\" (key \"\(key)\")"
                    )
                }
            }
            for value in unique { try LabelSyntax.validateValue(value, key: key) }
            self.key = key
            self.operator = `operator`
            self.values = unique
        }

        /// `notin` and `!=` match a missing label; `gt`/`lt` match only integer values.
        public func matches(_ labels: [String: String]) -> Bool {
            let value = labels[key]
            switch self.operator {
            case .in, .equals, .doubleEquals:
                guard let value else { return false }
                return values.contains(value)
            case .notIn, .notEquals:
                guard let value else { return true }
                return !values.contains(value)
            case .exists:
                return value != nil
            case .doesNotExist:
                return value == nil
            case .greaterThan, .lessThan:
                guard let value, let actual = Int64(value), values.count == 1, let bound = Int64(values[0]) else {
                    return false
                }
                return self.operator == .greaterThan ? actual > bound : actual < bound
            }
        }

        /// `Requirement.String()`.
        public var description: String {
            let joined = values.joined(separator: ",")
            switch self.operator {
            case .equals: return "\(key)=\(joined)"
            case .doubleEquals: return "\(key)==\(joined)"
            case .notEquals: return "\(key)!=\(joined)"
            case .in: return "\(key) in (\(joined))"
            case .notIn: return "\(key) notin (\(joined))"
            case .exists: return key
            case .doesNotExist: return "!\(key)"
            case .greaterThan: return "\(key)>\(joined)"
            case .lessThan: return "\(key)<\(joined)"
            }
        }
    }
}

/// A selector the API server would reject; the adapter answers it with a 400 `BadRequest` Status.
public struct LabelSelectorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong, in apimachinery's words where it has them.
    public let message: String

    init(_ message: String) { self.message = message }

    /// ``message``.
    public var description: String { message }
}

/// Label key and value syntax (apimachinery `validation.IsQualifiedName`, `IsValidLabelValue`).
enum LabelSyntax {
    static let nameMaxLength = 63
    static let prefixMaxLength = 253

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
    }

    /// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, non-empty.
    static func isQualifiedNamePart(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// A lower-case RFC 1123 subdomain: dot-separated labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
    static func isDNS1123Subdomain(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= prefixMaxLength else { return false }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = Array(label.utf8)
            func ok(_ byte: UInt8) -> Bool { (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 122) }
            guard let first = bytes.first, let last = bytes.last, ok(first), ok(last),
                bytes.allSatisfy({ ok($0) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return true
    }

    static let nameRule =
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"

    static func validateKey(_ key: String) throws(LabelSelectorError) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        let name: Substring
        switch parts.count {
        case 1:
            name = parts[0]
        case 2:
            if parts[0].isEmpty {
                throw LabelSelectorError("invalid label key \"\(key)\": prefix part must be non-empty")
            }
            if !isDNS1123Subdomain(parts[0]) {
                throw LabelSelectorError(
                    "invalid label key \"\(key)\": prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters (e.g. 'example.com')"
                )
            }
            name = parts[1]
        default:
            throw LabelSelectorError(
                "invalid label key \"\(key)\": a qualified name has at most one '/' (e.g. 'MyName' or 'example.com/MyName')"
            )
        }
        if name.isEmpty {
            throw LabelSelectorError("invalid label key \"\(key)\": name part must be non-empty")
        }
        if name.utf8.count > nameMaxLength {
            throw LabelSelectorError("invalid label key \"\(key)\": name part must be no more than 63 characters")
        }
        if !isQualifiedNamePart(name) {
            throw LabelSelectorError("invalid label key \"\(key)\": name part \(nameRule) (e.g. 'MyName', 'my.name' or '123-abc')")
        }
    }

    static func validateValue(_ value: String, key: String) throws(LabelSelectorError) {
        if value.isEmpty { return }
        if value.utf8.count > nameMaxLength {
            throw LabelSelectorError("invalid value \"\(value)\" for label \"\(key)\": must be no more than 63 characters")
        }
        if !isQualifiedNamePart(Substring(value)) {
            throw LabelSelectorError(
                "invalid value \"\(value)\" for label \"\(key)\": a valid label \(nameRule) (e.g. 'MyValue', 'my_value' or '12345')"
            )
        }
    }
}

/// apimachinery's selector lexer and recursive-descent parser, token for token.
struct LabelSelectorParser {
    enum Token: Equatable {
        case identifier(String)
        case `in`, notIn
        case doesNotExist  // !
        case equals, doubleEquals, notEquals, greaterThan, lessThan
        case openParen, closeParen, comma
        case end

        /// The literal for error messages.
        var literal: String {
            switch self {
            case .identifier(let text): text
            case .in: "in"
            case .notIn: "notin"
            case .doesNotExist: "!"
            case .equals: "="
            case .doubleEquals: "=="
            case .notEquals: "!="
            case .greaterThan: ">"
            case .lessThan: "<"
            case .openParen: "("
            case .closeParen: ")"
            case .comma: ","
            case .end: ""
            }
        }

        /// In value position (`lookahead(Values)`), the keywords are plain identifiers.
        var asValue: Token {
            switch self {
            case .in: .identifier("in")
            case .notIn: .identifier("notin")
            default: self
            }
        }
    }

    private var tokens: [Token] = []
    private var position = 0
    private let lexError: LabelSelectorError?

    init(_ text: String) {
        var tokens: [Token] = []
        var lexError: LabelSelectorError?
        let bytes = Array(text.utf8)
        var index = 0
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        func isSpecial(_ byte: UInt8) -> Bool { Array("=!(),><".utf8).contains(byte) }
        let specials: [String: Token] = [
            "=": .equals, "==": .doubleEquals, "!=": .notEquals, "!": .doesNotExist, ">": .greaterThan,
            "<": .lessThan, "(": .openParen, ")": .closeParen, ",": .comma,
        ]
        scan: while index < bytes.count {
            let byte = bytes[index]
            if byte == 0 {
                // Go's lexer stops at a NUL as if the string ended; refuse instead of silently truncating.
                lexError = LabelSelectorError("selector contains a NUL character")
                break
            }
            if isSpace(byte) {
                index += 1
            } else if isSpecial(byte) {
                // Longest run of specials that still forms a token.
                var buffer = ""
                var last: (token: Token, end: Int)?
                var cursor = index
                while cursor < bytes.count, isSpecial(bytes[cursor]) {
                    buffer.append(Character(Unicode.Scalar(bytes[cursor])))
                    if let token = specials[buffer] {
                        last = (token, cursor + 1)
                    } else if last != nil {
                        break
                    }
                    cursor += 1
                }
                guard let last else {
                    lexError = LabelSelectorError("error expected: keyword found '\(buffer)'")
                    break scan
                }
                tokens.append(last.token)
                index = last.end
            } else {
                var end = index
                while end < bytes.count, !isSpace(bytes[end]), !isSpecial(bytes[end]), bytes[end] != 0 { end += 1 }
                let word = String(decoding: bytes[index..<end], as: UTF8.self)
                switch word {
                case "in": tokens.append(.in)
                case "notin": tokens.append(.notIn)
                default: tokens.append(.identifier(word))
                }
                index = end
            }
        }
        tokens.append(.end)
        self.tokens = tokens
        self.lexError = lexError
    }

    private func lookahead() -> Token { tokens[position].asValue }

    private mutating func consume() -> Token {
        let token = tokens[position].asValue
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private mutating func consumeOperatorPosition() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    mutating func parse() throws(LabelSelectorError) -> [LabelSelector.Requirement] {
        if let lexError { throw lexError }
        var requirements: [LabelSelector.Requirement] = []
        while true {
            switch lookahead() {
            case .identifier, .doesNotExist:
                requirements.append(try parseRequirement())
                switch consume() {
                case .end:
                    return requirements
                case .comma:
                    switch lookahead() {
                    case .identifier, .doesNotExist: continue
                    case let other:
                        throw LabelSelectorError("found '\(other.literal)', expected: identifier after ','")
                    }
                case let other:
                    throw LabelSelectorError("found '\(other.literal)', expected: ',' or 'end of string'")
                }
            case .end:
                return requirements
            case let other:
                throw LabelSelectorError("found '\(other.literal)', expected: !, identifier, or 'end of string'")
            }
        }
    }

    private mutating func parseRequirement() throws(LabelSelectorError) -> LabelSelector.Requirement {
        var negated = false
        var token = consume()
        if token == .doesNotExist {
            negated = true
            token = consume()
        }
        guard case .identifier(let key) = token else {
            throw LabelSelectorError("found '\(token.literal)', expected: identifier")
        }
        try LabelSyntax.validateKey(key)
        let next = lookahead()
        if next == .end || next == .comma {
            return try LabelSelector.Requirement(key: key, operator: negated ? .doesNotExist : .exists)
        }
        if negated {
            // `!k` must end the requirement; Go reports the next token as a bad operator.
            throw LabelSelectorError("found '\(next.literal)', expected: ',' or 'end of string' after '!\(key)'")
        }
        let op: LabelSelector.Requirement.Operator
        switch consumeOperatorPosition() {
        case .in: op = .in
        case .notIn: op = .notIn
        case .equals: op = .equals
        case .doubleEquals: op = .doubleEquals
        case .notEquals: op = .notEquals
        case .greaterThan: op = .greaterThan
        case .lessThan: op = .lessThan
        case let other:
            throw LabelSelectorError("found '\(other.literal)', expected: in, notin, =, ==, !=, gt, lt")
        }
        let values: [String]
        switch op {
        case .in, .notIn: values = try parseValueList()
        default: values = try parseExactValue()
        }
        return try LabelSelector.Requirement(key: key, operator: op, values: values)
    }

    private mutating func parseExactValue() throws(LabelSelectorError) -> [String] {
        let next = lookahead()
        if next == .end || next == .comma { return [""] }
        let token = consume()
        guard case .identifier(let value) = token else {
            throw LabelSelectorError("found '\(token.literal)', expected: identifier")
        }
        return [value]
    }

    private mutating func parseValueList() throws(LabelSelectorError) -> [String] {
        let open = consume()
        guard open == .openParen else { throw LabelSelectorError("found '\(open.literal)' expected: '('") }
        switch lookahead() {
        case .closeParen:
            _ = consume()
            return [""]
        case .identifier, .comma:
            var values: [String] = []
            while true {
                let token = consume()
                switch token {
                case .identifier(let value):
                    values.append(value)
                    switch lookahead() {
                    case .comma: continue
                    case .closeParen:
                        _ = consume()
                        return values
                    case let other:
                        throw LabelSelectorError("found '\(other.literal)', expected: ',' or ')'")
                    }
                case .comma:
                    // Empty members: `(,a)`, `(a,)`, `(a,,b)` each add the empty value.
                    if values.isEmpty { values.append("") }
                    switch lookahead() {
                    case .closeParen:
                        values.append("")
                        _ = consume()
                        return values
                    case .comma:
                        _ = consume()
                        values.append("")
                    default:
                        break
                    }
                default:
                    throw LabelSelectorError("found '\(token.literal)', expected: ',', or identifier")
                }
            }
        case let other:
            throw LabelSelectorError("found '\(other.literal)', expected: ',', ')' or identifier")
        }
    }
}
