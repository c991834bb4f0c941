import CYAML

/// YAML (and therefore JSON) through libyaml's event parser, into a ``ConfigValue`` tree. Anchors, aliases and
/// tags are refused: a metrics configuration needs none, and aliases are how "billion laughs" documents blow up.
public enum YAMLDocument {
    /// Parses one document; an empty file is ``ConfigValue/null``.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 32) throws(ConfigError) -> ConfigValue {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw ConfigError(path: "", message: "libyaml could not initialize its parser")
        }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(ConfigError) -> ConfigValue in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var builder = TreeBuilder(maxDepth: maxDepth)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    throw ConfigError(
                        path: "", message: "YAML line \(parser.problem_mark.line + 1) column \(parser.problem_mark.column + 1): \(problem)")
                }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return builder.result ?? .null
                case YAML_DOCUMENT_START_EVENT:
                    guard builder.result == nil else {
                        throw ConfigError(path: "", message: "YAML line \(line): only one document is allowed")
                    }
                case YAML_MAPPING_START_EVENT:
                    try builder.open(map: true, line: line)
                case YAML_SEQUENCE_START_EVENT:
                    try builder.open(map: false, line: line)
                case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
                    try builder.close(line: line)
                case YAML_SCALAR_EVENT:
                    let scalar = event.data.scalar
                    let text = String(
                        decoding: UnsafeBufferPointer(start: scalar.value, count: Int(scalar.length)), as: UTF8.self)
                    let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
                    let value: ConfigValue =
                        plain && (text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL")
                        ? .null : .scalar(text)
                    try builder.add(value, line: line)
                case YAML_ALIAS_EVENT:
                    throw ConfigError(path: "", message: "YAML line \(line): aliases are not supported")
                default:
                    break
                }
            }
        }
    }

    /// Builds the tree from start/end events, checking keys as it goes.
    private struct TreeBuilder {
        enum Frame {
            case map(entries: [(key: String, value: ConfigValue)], pendingKey: String?, line: Int)
            case list([ConfigValue])
        }

        var stack: [Frame] = []
        var result: ConfigValue?
        let maxDepth: Int

        init(maxDepth: Int) { self.maxDepth = maxDepth }

        mutating func open(map: Bool, line: Int) throws(ConfigError) {
            guard stack.count < maxDepth else {
                throw ConfigError(path: "", message: "YAML line \(line): nested deeper than \(maxDepth) levels")
            }
            if case .map(_, nil, _) = stack.last {
                throw ConfigError(path: "", message: "YAML line \(line): a map key must be a plain value")
            }
            stack.append(map ? .map(entries: [], pendingKey: nil, line: line) : .list([]))
        }

        mutating func close(line: Int) throws(ConfigError) {
            guard let frame = stack.popLast() else { return }
            let value: ConfigValue
            switch frame {
            case .map(let entries, _, _): value = .map(entries)
            case .list(let items): value = .list(items)
            }
            try add(value, line: line)
        }

        mutating func add(_ value: ConfigValue, line: Int) throws(ConfigError) {
            guard let top = stack.popLast() else {
                result = value
                return
            }
            switch top {
            case .list(var items):
                items.append(value)
                stack.append(.list(items))
            case .map(var entries, let pendingKey, let start):
                if let key = pendingKey {
                    entries.append((key, value))
                    stack.append(.map(entries: entries, pendingKey: nil, line: start))
                } else {
                    let key: String
                    switch value {
                    case .scalar(let text): key = text
                    case .null: key = ""
                    default: throw ConfigError(path: "", message: "YAML line \(line): a map key must be a plain value")
                    }
                    guard !entries.contains(where: { $0.key == key }) else {
                        throw ConfigError(path: "", message: "YAML line \(line): duplicate key \"\(key)\"")
                    }
                    stack.append(.map(entries: entries, pendingKey: key, line: start))
                }
            }
        }
    }
}

/// A parsed configuration document: what YAML (or JSON) gives before it is checked against the schema.
public indirect enum ConfigValue: Sendable, Equatable {
    /// The scalar's text, quoted or plain; plain `~`, `null`, `Null`, `NULL` and empty scalars are ``null`` instead.
    case scalar(String)
    case list([ConfigValue])
    /// Keys in document order (duplicates are refused while parsing).
    case map([(key: String, value: ConfigValue)])
    /// A plain null scalar (see ``scalar(_:)``) or an empty document.
    case null

    /// Maps are equal only with the same keys in the same order.
    public static func == (lhs: ConfigValue, rhs: ConfigValue) -> Bool {
        switch (lhs, rhs) {
        case (.scalar(let a), .scalar(let b)): a == b
        case (.list(let a), .list(let b)): a == b
        case (.map(let a), .map(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.null, .null): true
        default: false
        }
    }
}

/// A configuration problem, with where it is (`metrics[2].aggregation`).
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Where the problem is, as `metrics[2].aggregation`; empty when it is the whole document (YAML syntax, an
    /// unreadable file).
    public var path: String
    public var message: String

    /// Thrown by the parser and by each program's schema checks, with the path they were checking.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `PATH: MESSAGE`, or just the message when the path is empty.
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

