/// The state machine behind `ExpositionParser`: one pass over the lines, families built as they appear.
struct ExpositionLineParser {
    private static let a = UInt8(ascii: "a"), z = UInt8(ascii: "z"), zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
    private static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), hash = UInt8(ascii: "#")
    private static let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r"), quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\"), comma = UInt8(ascii: ","), equals = UInt8(ascii: "=")
    private static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")

    /// A family under construction.
    private struct Builder {
        var name: String
        /// The name HELP/TYPE lines use: the family name in OpenMetrics, the sample name (`x_total`) in text.
        var metadataName: String
        var help: String?
        var kind: MetricFamily.Kind = .unknown
        var typed = false
        var unit: String?
        var samples: [Sample] = []
        /// Sample names this family owns, as bytes (for the per-sample fast path) and the suffix they map to.
        var claims: [(name: [UInt8], text: String, suffix: String)] = []
        /// OpenMetrics `gaugehistogram`: rendered as a histogram, but its wire sums/counts are `_gsum`/`_gcount`.
        var gaugeHistogram = false
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private let format: ExpositionFormat
    private let limits: ExpositionParser.Limits
    private var strict: Bool { format == .openMetrics }

    private var builders: [Builder] = []
    private var familyByName: [String: Int] = [:]
    private var familyByMetadataName: [String: Int] = [:]
    private var claimIndex: [String: (family: Int, suffix: String)] = [:]
    private var current: Int?
    private var sampleCount = 0

    private var lineNumber = 0
    private var lineStart = 0
    private var lineEnd = 0
    private var pos = 0

    private var interner = Interner()
    private var scratch: [UInt8] = []

    init(bytes: UnsafeBufferPointer<UInt8>, format: ExpositionFormat, limits: ExpositionParser.Limits) {
        self.bytes = bytes
        self.format = format
        self.limits = limits
    }

    // MARK: - Driver

    mutating func run() throws(ExpositionParseError) -> [MetricFamily] {
        guard bytes.count <= limits.maxBytes else {
            throw ExpositionParseError(
                line: 1, column: 1, message: "exposition is \(bytes.count) bytes, over the limit of \(limits.maxBytes)", overLimit: true)
        }
        var sawEOF = false
        var next = 0
        while next < bytes.count {
            lineNumber += 1
            lineStart = next
            var end = next
            let count = bytes.count
            let maxEnd = min(count, next + limits.maxLineLength + 1)
            while end < maxEnd, bytes[end] != Self.lf { end += 1 }
            if end < count, bytes[end] != Self.lf {
                throw error("line is longer than \(limits.maxLineLength) bytes", at: next, overLimit: true)
            }
            next = end + 1
            lineEnd = end
            if !strict, lineEnd > lineStart, bytes[lineEnd - 1] == Self.cr { lineEnd -= 1 }
            if lineEnd - lineStart > limits.maxLineLength {
                throw error("line is longer than \(limits.maxLineLength) bytes", at: lineStart, overLimit: true)
            }
            pos = lineStart
            if try parseLine() {
                sawEOF = true
                if next < count {
                    lineNumber += 1
                    throw error("content after # EOF", at: next)
                }
                break
            }
        }
        if strict, !sawEOF {
            lineNumber += 1
            throw error("missing # EOF at end of OpenMetrics exposition", at: bytes.count)
        }
        return builders.map {
            MetricFamily(name: $0.name, help: $0.help ?? "", kind: $0.kind, unit: $0.unit, samples: $0.samples)
        }
    }

    /// Parses the line in `lineStart..<lineEnd`; true on OpenMetrics' `# EOF`.
    private mutating func parseLine() throws(ExpositionParseError) -> Bool {
        if !strict { skipBlanks() }
        guard pos < lineEnd else {
            if strict { throw error("empty line", at: pos) }
            return false
        }
        if bytes[pos] == Self.hash {
            return try parseComment()
        }
        try parseSample()
        return false
    }

    // MARK: - Comments and metadata

    private enum Keyword { case help, type, unit, eof, other }

    private mutating func parseComment() throws(ExpositionParseError) -> Bool {
        pos += 1  // '#'
        if strict {
            guard pos < lineEnd, bytes[pos] == Self.space else { throw error("expected a space after #", at: pos) }
            pos += 1
        } else {
            skipBlanks()
        }
        let keywordStart = pos
        while pos < lineEnd, bytes[pos] != Self.space, bytes[pos] != Self.tab { pos += 1 }
        let keyword: Keyword =
            switch ascii(keywordStart, pos) {
            case "HELP": .help
            case "TYPE": .type
            case "UNIT" where strict: .unit
            case "EOF" where strict: .eof
            default: .other
            }
        switch keyword {
        case .other:
            if strict { throw error("unexpected comment; OpenMetrics allows only HELP, TYPE, UNIT and EOF", at: keywordStart) }
            return false  // a plain comment
        case .eof:
            guard pos == lineEnd else { throw error("unexpected text after # EOF", at: pos) }
            return true
        case .help, .type, .unit:
            break
        }
        // Separator, then the metric name.
        if strict {
            guard pos < lineEnd, bytes[pos] == Self.space else { throw error("expected a space after the keyword", at: pos) }
            pos += 1
        } else {
            guard pos < lineEnd else { throw error("expected a metric name", at: pos) }
            skipBlanks()
        }
        let nameStart = pos
        try scanMetricName()
        let name = interner.intern(slice(nameStart, pos))
        // Separator before the payload: optional for HELP (empty help), required otherwise.
        if pos < lineEnd {
            guard bytes[pos] == Self.space || (!strict && bytes[pos] == Self.tab) else {
                throw error("unexpected character \(describe(bytes[pos])) after metric name", at: pos)
            }
            pos += 1
            if !strict && keyword != .help { skipBlanks() }
        }
        switch keyword {
        case .help:
            var helpEnd = lineEnd
            if !strict {
                skipBlanks()
                // CRLF tolerance strips one CR; strip them all so that a HELP text ending in CRs (which the
                // encoder writes raw) reads the same after re-encoding.
                while helpEnd > pos, bytes[helpEnd - 1] == Self.cr { helpEnd -= 1 }
            }
            let help = try unescapeHelp(pos, helpEnd)
            try applyHelp(help, name: name, at: nameStart)
        case .type:
            let typeStart = pos
            while pos < lineEnd, bytes[pos] != Self.space, bytes[pos] != Self.tab { pos += 1 }
            let typeText = ascii(typeStart, pos)
            if !strict { skipBlanks() }
            guard pos == lineEnd else { throw error("unexpected text after the type", at: pos) }
            try applyType(typeText, name: name, at: typeStart)
        case .unit:
            let unitStart = pos
            while pos < lineEnd, isNameByte(bytes[pos], colon: true) { pos += 1 }
            guard pos == lineEnd else { throw error("invalid character \(describe(bytes[pos])) in unit", at: pos) }
            try applyUnit(ascii(unitStart, pos), name: name, at: unitStart)
        case .eof, .other:
            break
        }
        return false
    }

    /// The family a metadata line for `name` applies to, creating it when `name` is new.
    ///
    /// Returns nil for a text `x_created` metadata line that belongs to family `x` (its samples fold into `x`).
    private mutating func metadataFamily(_ name: String, at column: Int) throws(ExpositionParseError) -> Int? {
        if let index = familyByMetadataName[name] {
            guard index == current else {
                throw error("metadata for \(name) after its family ended (families must not be repeated)", at: column)
            }
            guard builders[index].samples.isEmpty else {
                throw error("metadata for \(name) after its samples", at: column)
            }
            return index
        }
        if let claim = claimIndex[name] {
            if !strict, claim.suffix == "_created" {
                current = claim.family
                return nil
            }
            throw error("metric name \(name) collides with family \(builders[claim.family].name)", at: column)
        }
        return try newFamily(name: name, metadataName: name, at: column)
    }

    private mutating func applyHelp(_ help: String, name: String, at column: Int) throws(ExpositionParseError) {
        guard let index = try metadataFamily(name, at: column) else { return }
        guard builders[index].help == nil else { throw error("second HELP line for \(name)", at: column) }
        builders[index].help = help
    }

    private mutating func applyUnit(_ unit: String, name: String, at column: Int) throws(ExpositionParseError) {
        guard let index = try metadataFamily(name, at: column) else { return }
        guard builders[index].unit == nil else { throw error("second UNIT line for \(name)", at: column) }
        guard !unit.isEmpty else { return }
        guard name.hasSuffix("_" + unit) else {
            throw error("metric name \(name) does not end in its unit _\(unit)", at: column)
        }
        guard builders[index].kind != .info else { throw error("info metric \(name) cannot have a unit", at: column) }
        builders[index].unit = unit
    }

    private mutating func applyType(_ typeText: String, name: String, at column: Int) throws(ExpositionParseError) {
        let kind: MetricFamily.Kind
        var gaugeHistogram = false
        switch (typeText, format) {
        case ("counter", _): kind = .counter
        case ("gauge", _): kind = .gauge
        case ("histogram", _): kind = .histogram
        case ("summary", _): kind = .summary
        case ("untyped", .text), ("unknown", .openMetrics): kind = .unknown
        case ("info", .openMetrics): kind = .info
        case ("stateset", .openMetrics): kind = .gauge
        case ("gaugehistogram", .openMetrics):
            kind = .histogram
            gaugeHistogram = true
        default: throw error("unknown metric type \"\(typeText)\"", at: column)
        }
        guard let index = try metadataFamily(name, at: column) else {
            guard kind == .gauge || kind == .unknown || kind == .counter else {
                throw error("metric name \(name) collides with a _created series", at: column)
            }
            return
        }
        guard !builders[index].typed else { throw error("second TYPE line for \(name)", at: column) }
        // Re-derive the family name and the sample names it owns for the declared type.
        var familyName = name
        if format == .text, kind == .counter, name.hasSuffix("_total") {
            familyName = String(name.dropLast(6))
            guard !familyName.isEmpty else { throw error("counter name _total has no family name", at: column) }
        }
        if kind == .counter, familyName.hasSuffix("_total") {
            throw error("counter family name \(familyName) must not end in _total", at: column)
        }
        if kind == .info, familyName.hasSuffix("_info") {
            throw error("info family name \(familyName) must not end in _info", at: column)
        }
        if kind == .info, builders[index].unit != nil {
            throw error("info metric \(name) cannot have a unit", at: column)
        }
        if let unit = builders[index].unit, kind == .counter, !familyName.hasSuffix("_" + unit) {
            throw error("metric name \(familyName) does not end in its unit _\(unit)", at: column)
        }
        unregister(index)
        if familyName != builders[index].name {
            if familyByName[familyName] != nil {
                throw error("metric family \(familyName) appears more than once", at: column)
            }
            familyByName[builders[index].name] = nil
            familyByName[familyName] = index
            builders[index].name = familyName
        }
        builders[index].kind = kind
        builders[index].typed = true
        builders[index].gaugeHistogram = gaugeHistogram
        try register(index, metadataName: name, at: column)
    }

    // MARK: - Families and the sample names they own

    private mutating func newFamily(name: String, metadataName: String, at column: Int) throws(ExpositionParseError) -> Int {
        if familyByName[name] != nil {
            throw error("metric family \(name) appears more than once", at: column)
        }
        let index = builders.count
        builders.append(Builder(name: name, metadataName: metadataName))
        familyByName[name] = index
        familyByMetadataName[metadataName] = index
        try register(index, metadataName: metadataName, at: column)
        current = index
        return index
    }

    private mutating func unregister(_ index: Int) {
        for claim in builders[index].claims where claimIndex[claim.text]?.family == index {
            claimIndex[claim.text] = nil
        }
        builders[index].claims.removeAll()
    }

    /// Claims every sample name the family may use on input and that the encoder writes for it, so that no two
    /// families can produce the same series name (and re-encoding what was parsed parses the same way).
    private mutating func register(_ index: Int, metadataName: String, at column: Int) throws(ExpositionParseError) {
        let name = builders[index].name
        var claims: [(String, String)]
        switch builders[index].kind {
        case .gauge, .unknown:
            claims = [(name, "")]
        case .counter:
            claims = [(name + "_total", ""), (name + "_created", "_created")]
            if format == .text, metadataName == name { claims.append((name, "")) }
        case .info:
            claims = [(name + "_info", "")]
        case .histogram:
            claims = [(name + "_bucket", "_bucket"), (name + "_count", "_count"), (name + "_sum", "_sum")]
            if builders[index].gaugeHistogram {
                claims += [(name + "_gcount", "_count"), (name + "_gsum", "_sum")]
            } else {
                claims.append((name + "_created", "_created"))
            }
        case .summary:
            claims = [(name, ""), (name + "_count", "_count"), (name + "_sum", "_sum"), (name + "_created", "_created")]
        }
        for (claim, _) in claims {
            if let owner = claimIndex[claim], owner.family != index {
                throw error("metric name \(claim) collides with family \(builders[owner.family].name)", at: column)
            }
        }
        if familyByMetadataName[metadataName] == nil { familyByMetadataName[metadataName] = index }
        for (claim, suffix) in claims {
            claimIndex[claim] = (index, suffix)
            builders[index].claims.append((Array(claim.utf8), claim, suffix))
        }
    }

    /// Finds the family and suffix for a sample named `nameStart..<nameEnd`, creating an unknown family if new.
    private mutating func resolveSample(_ nameStart: Int, _ nameEnd: Int) throws(ExpositionParseError) -> (Int, String) {
        let nameBytes = slice(nameStart, nameEnd)
        if let current {
            for claim in builders[current].claims where claim.name.elementsEqual(nameBytes) {
                return (current, claim.suffix)
            }
        }
        let name = interner.intern(nameBytes)
        if let claim = claimIndex[name] {
            if strict {
                throw error("sample \(name) of family \(builders[claim.family].name) is not contiguous with it", at: nameStart)
            }
            current = claim.family
            return (claim.family, claim.suffix)
        }
        let index = try newFamily(name: name, metadataName: name, at: nameStart)
        return (index, "")
    }

    // MARK: - Samples

    private mutating func parseSample() throws(ExpositionParseError) {
        let nameStart = pos
        try scanMetricName()
        let nameEnd = pos
        var labels: [Label] = []
        var brace = pos
        if !strict {
            while brace < lineEnd, bytes[brace] == Self.space || bytes[brace] == Self.tab { brace += 1 }
        }
        if brace < lineEnd, bytes[brace] == Self.openBrace {
            pos = brace
            try parseLabels(into: &labels)
        }
        try separator("expected a space before the value")
        let valueStart = pos
        let value = try parseValue(what: "value")
        var timestamp: Int64?
        if pos < lineEnd {
            let gapStart = pos
            try separator("expected a space after the value")
            if pos < lineEnd, bytes[pos] != Self.hash {
                timestamp = try parseTimestamp()
            } else if !strict, pos < lineEnd {
                throw error("exemplars are not allowed in the text format", at: pos)
            }
            if pos < lineEnd {
                if timestamp != nil { try separator("expected a space after the timestamp") }
                if strict {
                    try skipExemplar()
                } else if pos < lineEnd {
                    throw error("unexpected text after the sample", at: pos)
                }
            } else if strict, timestamp == nil {
                throw error("trailing space after the value", at: gapStart)
            }
        }
        let (family, suffix) = try resolveSample(nameStart, nameEnd)
        try check(value: value, labels: labels, suffix: suffix, family: family, at: valueStart, labelsAt: nameEnd)
        sampleCount += 1
        guard sampleCount <= limits.maxSamples else {
            throw error("more than \(limits.maxSamples) samples", at: nameStart, overLimit: true)
        }
        builders[family].samples.append(
            Sample(suffix: suffix, labels: labels, value: value, timestampMilliseconds: timestamp))
    }

    /// What the model (and the encoder) require of a sample of its family's kind.
    private func check(value: Double, labels: [Label], suffix: String, family: Int, at column: Int, labelsAt: Int)
        throws(ExpositionParseError)
    {
        let builder = builders[family]
        let bound: String? =
            switch (builder.kind, suffix) {
            case (.histogram, "_bucket"): "le"
            case (.summary, ""): "quantile"
            default: nil
            }
        if let bound {
            guard let label = labels.first(where: { $0.name == bound }) else {
                throw error("\(builder.name) sample without a \(bound) label", at: labelsAt)
            }
            guard Self.parseFloat(label.value) != nil else {
                throw error("invalid \(bound) value \"\(label.value)\"", at: labelsAt)
            }
        }
        if builder.kind == .info, value != 1 {
            throw error("info sample value must be 1", at: column)
        }
    }

    /// A space (OpenMetrics) or a run of spaces and tabs (text).
    private mutating func separator(_ message: String) throws(ExpositionParseError) {
        guard pos < lineEnd, bytes[pos] == Self.space || (!strict && bytes[pos] == Self.tab) else {
            throw error(pos < lineEnd ? "\(message), found \(describe(bytes[pos]))" : message, at: pos)
        }
        pos += 1
        if !strict { skipBlanks() }
    }

    /// ` # {labels} value [timestamp]` after an OpenMetrics sample; checked, then dropped.
    private mutating func skipExemplar() throws(ExpositionParseError) {
        guard pos + 2 < lineEnd, bytes[pos] == Self.hash, bytes[pos + 1] == Self.space,
            bytes[pos + 2] == Self.openBrace
        else { throw error("expected an exemplar (# {labels} value)", at: pos) }
        pos += 2
        var exemplarLabels: [Label] = []
        try parseLabels(into: &exemplarLabels)
        try separator("expected a space before the exemplar value")
        _ = try parseValue(what: "exemplar value")
        if pos < lineEnd {
            try separator("expected a space after the exemplar value")
            _ = try parseTimestamp()
        }
        guard pos == lineEnd else { throw error("unexpected text after the exemplar", at: pos) }
    }

    /// `{name="value",…}`; whitespace and a trailing comma are tolerated in the text format.
    private mutating func parseLabels(into labels: inout [Label]) throws(ExpositionParseError) {
        pos += 1  // '{'
        var afterComma = false
        while true {
            if !strict { skipBlanks() }
            guard pos < lineEnd else { throw error("unterminated label set", at: pos) }
            if bytes[pos] == Self.closeBrace {
                if afterComma, strict { throw error("trailing comma in label set", at: pos - 1) }
                pos += 1
                return
            }
            let nameStart = pos
            guard isNameStart(bytes[pos], colon: false) else {
                throw error("expected a label name, found \(describe(bytes[pos]))", at: pos)
            }
            pos += 1
            while pos < lineEnd, isNameByte(bytes[pos], colon: false) { pos += 1 }
            guard pos - nameStart <= limits.maxNameLength else {
                throw error("label name longer than \(limits.maxNameLength) bytes", at: nameStart)
            }
            if pos - nameStart >= 2, bytes[nameStart] == UInt8(ascii: "_"), bytes[nameStart + 1] == UInt8(ascii: "_") {
                throw error("label name \(ascii(nameStart, pos)) is reserved (starts with __)", at: nameStart)
            }
            let nameBytes = slice(nameStart, pos)
            if !strict { skipBlanks() }
            guard pos < lineEnd, bytes[pos] == Self.equals else { throw error("expected = after label name", at: pos) }
            pos += 1
            if !strict { skipBlanks() }
            guard pos < lineEnd, bytes[pos] == Self.quote else { throw error("expected \" to open label value", at: pos) }
            pos += 1
            let value = try parseLabelValue()
            for label in labels where label.name.utf8.elementsEqual(nameBytes) {
                throw error("duplicate label name \(label.name)", at: nameStart)
            }
            guard labels.count < limits.maxLabelsPerSample else {
                throw error("more than \(limits.maxLabelsPerSample) labels", at: nameStart)
            }
            labels.append(Label(interner.intern(nameBytes), value))
            if !strict { skipBlanks() }
            guard pos < lineEnd else { throw error("unterminated label set", at: pos) }
            if bytes[pos] == Self.comma {
                pos += 1
                afterComma = true
            } else if bytes[pos] != Self.closeBrace {
                throw error("expected , or } after label value, found \(describe(bytes[pos]))", at: pos)
            } else {
                afterComma = false
            }
        }
    }

    /// A label value after its opening quote, up to and including the closing quote.
    private mutating func parseLabelValue() throws(ExpositionParseError) -> String {
        let start = pos
        while pos < lineEnd, bytes[pos] != Self.quote, bytes[pos] != Self.backslash { pos += 1 }
        if pos < lineEnd, bytes[pos] == Self.quote {
            // No escapes: intern straight from the input.
            let raw = slice(start, pos)
            pos += 1
            return try validated(raw, at: start)
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: slice(start, pos))
        while true {
            guard pos < lineEnd else { throw error("unterminated label value", at: pos) }
            let byte = bytes[pos]
            if byte == Self.quote {
                pos += 1
                break
            }
            if byte == Self.backslash {
                guard pos + 1 < lineEnd else { throw error("unterminated label value", at: pos) }
                switch bytes[pos + 1] {
                case Self.backslash: scratch.append(Self.backslash)
                case Self.quote: scratch.append(Self.quote)
                case UInt8(ascii: "n"): scratch.append(Self.lf)
                default:
                    throw error("invalid label value escape \\\(describeRaw(bytes[pos + 1]))", at: pos)
                }
                pos += 2
            } else {
                scratch.append(byte)
                pos += 1
            }
        }
        let scratchCopy = scratch
        let result = scratchCopy.withUnsafeBufferPointer { buffer in
            Result { () throws(ExpositionParseError) in try validated(buffer, at: start) }
        }
        return try result.get()
    }

    private mutating func validated(_ raw: UnsafeBufferPointer<UInt8>, at column: Int) throws(ExpositionParseError) -> String {
        guard let string = interner.internValidating(raw) else { throw error("invalid UTF-8 in label value", at: column) }
        return string
    }

    /// HELP text: `\\` and `\n` (and `\"`) are unescaped; any other backslash is kept as written.
    private func unescapeHelp(_ start: Int, _ end: Int) throws(ExpositionParseError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(end - start)
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == Self.backslash, index + 1 < end {
                switch bytes[index + 1] {
                case Self.backslash:
                    output.append(Self.backslash)
                    index += 2
                    continue
                case UInt8(ascii: "n"):
                    output.append(Self.lf)
                    index += 2
                    continue
                case Self.quote:
                    output.append(Self.quote)
                    index += 2
                    continue
                default: break
                }
            }
            output.append(byte)
            index += 1
        }
        guard let help = String(validating: output, as: UTF8.self) else {
            throw error("invalid UTF-8 in HELP text", at: start)
        }
        return help
    }

    // MARK: - Tokens

    private mutating func scanMetricName() throws(ExpositionParseError) {
        let start = pos
        guard pos < lineEnd, isNameStart(bytes[pos], colon: true) else {
            throw error(
                pos < lineEnd ? "expected a metric name, found \(describe(bytes[pos]))" : "expected a metric name",
                at: pos)
        }
        pos += 1
        while pos < lineEnd, isNameByte(bytes[pos], colon: true) { pos += 1 }
        guard pos - start <= limits.maxNameLength else {
            throw error("metric name longer than \(limits.maxNameLength) bytes", at: start)
        }
    }

    /// A float token up to the next blank: Go `ParseFloat` syntax without hex/underscores.
    private mutating func parseValue(what: String) throws(ExpositionParseError) -> Double {
        let start = pos
        while pos < lineEnd, bytes[pos] != Self.space, bytes[pos] != Self.tab { pos += 1 }
        guard pos > start else { throw error("missing \(what)", at: start) }
        guard let value = Self.parseFloat(slice(start, pos)) else {
            throw error("invalid \(what) \(quotedToken(start, pos))", at: start)
        }
        return value
    }

    /// Text: integer milliseconds. OpenMetrics: (possibly fractional) seconds, kept to the millisecond.
    private mutating func parseTimestamp() throws(ExpositionParseError) -> Int64 {
        let start = pos
        while pos < lineEnd, bytes[pos] != Self.space, bytes[pos] != Self.tab { pos += 1 }
        let token = slice(start, pos)
        let parsed: Int64? = strict ? Self.parseSeconds(token) : Self.parseInteger(token)
        guard let parsed else { throw error("invalid timestamp \(quotedToken(start, pos))", at: start) }
        return parsed
    }

    static func parseInteger(_ token: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        var negative = false
        if index < token.count, token[index] == UInt8(ascii: "-") || token[index] == UInt8(ascii: "+") {
            negative = token[index] == UInt8(ascii: "-")
            index += 1
        }
        guard index < token.count else { return nil }
        var magnitude: UInt64 = 0
        while index < token.count {
            let digit = token[index] &- zero
            guard digit <= 9 else { return nil }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            guard !overflow1, !overflow2, sum <= UInt64(Int64.max) else { return nil }
            magnitude = sum
            index += 1
        }
        return negative ? -Int64(magnitude) : Int64(magnitude)
    }

    /// `[+-]digits[.digits]` exactly; other float spellings through `Double`, rounded to the millisecond.
    static func parseSeconds(_ token: UnsafeBufferPointer<UInt8>) -> Int64? {
        if let dot = token.firstIndex(of: UInt8(ascii: ".")),
            let whole = parseInteger(UnsafeBufferPointer(rebasing: token[..<dot])),
            dot + 1 < token.count, token[(dot + 1)...].allSatisfy({ $0 &- zero <= 9 }), token[0] != UInt8(ascii: ".")
        {
            var fraction: Int64 = 0
            for offset in 0..<3 {
                let index = dot + 1 + offset
                fraction = fraction * 10 + (index < token.count ? Int64(token[index] &- zero) : 0)
            }
            let negative = token[0] == UInt8(ascii: "-")
            let (milliseconds, overflow) = whole.multipliedReportingOverflow(by: 1000)
            guard !overflow else { return nil }
            let (total, overflow2) = milliseconds.addingReportingOverflow(negative ? -fraction : fraction)
            return overflow2 ? nil : total
        }
        if let whole = parseInteger(token) {
            let (milliseconds, overflow) = whole.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : milliseconds
        }
        guard let seconds = parseFloat(token), seconds.isFinite else { return nil }
        let milliseconds = (seconds * 1000).rounded()
        guard milliseconds.magnitude < 9.2e18 else { return nil }
        return Int64(milliseconds)
    }

    static func parseFloat(_ string: String) -> Double? {
        var string = string
        return string.withUTF8 { parseFloat($0) }
    }

    /// Go `ParseFloat` syntax (decimal, exponent, case-insensitive `Inf`/`Infinity` with optional sign, `NaN`).
    static func parseFloat(_ token: UnsafeBufferPointer<UInt8>) -> Double? {
        let count = token.count
        guard count > 0, count <= 512 else { return nil }
        var index = 0
        var negative = false
        if token[0] == UInt8(ascii: "+") || token[0] == UInt8(ascii: "-") {
            negative = token[0] == UInt8(ascii: "-")
            index = 1
        }
        guard index < count else { return nil }
        // Fast path: up to 15 plain digits are exact in a Double.
        if count - index <= 15 {
            var integer: Int64 = 0
            var plain = true
            for position in index..<count {
                let digit = token[position] &- zero
                if digit > 9 {
                    plain = false
                    break
                }
                integer = integer * 10 + Int64(digit)
            }
            if plain { return negative ? -Double(integer) : Double(integer) }
        }
        let first = token[index] | 0x20
        if first == UInt8(ascii: "i") || first == UInt8(ascii: "n") {
            let word = lowercasedASCII(token, from: index)
            switch word {
            case "inf", "infinity": return negative ? -.infinity : .infinity
            case "nan" where index == 0: return .nan
            default: return nil
            }
        }
        // Validate the decimal grammar so `Double(_:)` sees nothing it would read differently (hex, nan(…)).
        var digits = 0
        while index < count, token[index] &- zero <= 9 {
            index += 1
            digits += 1
        }
        if index < count, token[index] == UInt8(ascii: ".") {
            index += 1
            while index < count, token[index] &- zero <= 9 {
                index += 1
                digits += 1
            }
        }
        guard digits > 0 else { return nil }
        if index < count, token[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < count, token[index] == UInt8(ascii: "+") || token[index] == UInt8(ascii: "-") { index += 1 }
            var exponentDigits = 0
            while index < count, token[index] &- zero <= 9 {
                index += 1
                exponentDigits += 1
            }
            guard exponentDigits > 0 else { return nil }
        }
        guard index == count else { return nil }
        return Double(String(decoding: token, as: UTF8.self))
    }

    private static func lowercasedASCII(_ token: UnsafeBufferPointer<UInt8>, from start: Int) -> String {
        guard token.count - start <= 8 else { return "" }
        var bytes: [UInt8] = []
        for position in start..<token.count { bytes.append(token[position] | 0x20) }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Helpers

    @inline(__always)
    private mutating func skipBlanks() {
        while pos < lineEnd, bytes[pos] == Self.space || bytes[pos] == Self.tab { pos += 1 }
    }

    @inline(__always)
    private func isNameStart(_ byte: UInt8, colon: Bool) -> Bool {
        let lower = byte | 0x20
        return (lower >= Self.a && lower <= Self.z) || byte == UInt8(ascii: "_") || (colon && byte == UInt8(ascii: ":"))
    }

    @inline(__always)
    private func isNameByte(_ byte: UInt8, colon: Bool) -> Bool {
        isNameStart(byte, colon: colon) || (byte &- Self.zero <= 9)
    }

    @inline(__always)
    private func slice(_ start: Int, _ end: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[start..<end])
    }

    private func ascii(_ start: Int, _ end: Int) -> String {
        String(decoding: slice(start, min(end, start + 64)), as: UTF8.self)
    }

    private func quotedToken(_ start: Int, _ end: Int) -> String {
        var text = ""
        for byte in slice(start, min(end, start + 40)) { text += describeRaw(byte) }
        return "\"\(text)\(end - start > 40 ? "…" : "")\""
    }

    private func describe(_ byte: UInt8) -> String {
        "'\(describeRaw(byte))'"
    }

    private func describeRaw(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return String(UnicodeScalar(byte)) }
        let hex = String(byte, radix: 16, uppercase: true)
        return "\\x" + (hex.count == 1 ? "0" + hex : hex)
    }

    private func error(_ message: String, at position: Int, overLimit: Bool = false) -> ExpositionParseError {
        ExpositionParseError(line: lineNumber, column: max(1, position - lineStart + 1), message: message, overLimit: overLimit)
    }
}

/// Shares one `String` among repeats of the same bytes (family, label names, common label values).
///
/// Keyed by a 64-bit FNV-1a hash and verified byte for byte, so a collision only costs a fresh string. Bounded,
/// so a hostile exposition of unique values cannot grow it without limit.
struct Interner {
    private var table: [UInt64: String] = [:]
    private static let capacity = 4096
    private static let maxLength = 256

    mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        lookup(bytes) { String(decoding: $0, as: UTF8.self) }!
    }

    /// nil when `bytes` is not valid UTF-8.
    mutating func internValidating(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        lookup(bytes) { String(validating: $0, as: UTF8.self) }
    }

    @inline(__always)
    private mutating func lookup(
        _ bytes: UnsafeBufferPointer<UInt8>, make: (UnsafeBufferPointer<UInt8>) -> String?
    ) -> String? {
        guard bytes.count <= Self.maxLength else { return make(bytes) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        if let existing = table[hash], existing.utf8.elementsEqual(bytes) { return existing }
        guard let string = make(bytes) else { return nil }
        if table.count < Self.capacity { table[hash] = string }
        return string
    }
}
