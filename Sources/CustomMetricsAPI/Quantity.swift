/// A Kubernetes `resource.Quantity`: an exact decimal that serializes in apimachinery's canonical form.
///
/// The HPA parses every metric value as a Quantity and reads `MilliValue()`, so the adapter must emit exactly the
/// strings apimachinery would (`0.735` → `"735m"`, `1500` → `"1500"`, `1.5e9` → `"1500M"`). Values keep nano
/// precision; anything finer is rounded away from zero, as `ParseQuantity` does. Equality and ordering compare values,
/// not formats (`1Ki == 1024`), like apimachinery's `Cmp`.
public struct Quantity: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Which family of suffixes the canonical string uses; parsing remembers the one it saw.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        /// `n u m "" k M G T P E`.
        case decimalSI = "DecimalSI"
        /// `Ki Mi Gi Ti Pi Ei` (powers of 1024).
        case binarySI = "BinarySI"
        /// `e<n>`, e.g. `12e6`.
        case decimalExponent = "DecimalExponent"
    }

    /// Finest precision a quantity keeps: 10^-9.
    public static let nanoExponent = -9

    var amount: DecimalAmount
    /// The suffix family used by `description`.
    public var format: Format

    init(amount: DecimalAmount, format: Format) {
        self.amount = amount.roundedAwayFromZero(toExponent: Self.nanoExponent)
        self.format = format
    }

    /// Zero, serialized as `"0"`.
    public static let zero = Quantity(amount: .zero, format: .decimalSI)

    /// An integer quantity (`NewQuantity`).
    public init(_ value: Int64, format: Format = .decimalSI) {
        self.init(amount: DecimalAmount(value), format: format)
    }

    /// `value × 10^exponent` (`NewScaledQuantity`); exponents below -9 round away from zero to nano.
    public init(_ value: Int64, exponent: Int, format: Format = .decimalSI) {
        let base = DecimalAmount(value)
        self.init(
            amount: DecimalAmount(digits: base.digits, exponent: base.exponent + exponent, isNegative: base.isNegative),
            format: format
        )
    }

    /// `value / 1000` (`NewMilliQuantity`), the form most adapters build.
    public init(milli value: Int64) {
        self.init(value, exponent: -3)
    }

    /// The shortest decimal that round-trips `value` (what `strconv.FormatFloat(v, 'g', -1, 64)` prints), parsed as a
    /// quantity: `0.735` → `735m`, `0.1` → `100m`, `1e-12` → `1n`. Nil for NaN and ±infinity, which must never be
    /// served (omit the item instead).
    public init?(_ value: Double) {
        guard let amount = DecimalAmount(value) else { return nil }
        self.init(amount: amount, format: .decimalSI)
    }

    /// Parses a quantity string exactly as `resource.ParseQuantity` does (no surrounding whitespace).
    public init(parsing text: some StringProtocol) throws(QuantityParseError) {
        self = try QuantityParser.parse(String(text))
    }

    /// Whatever the format or spelling (`0`, `0Ki`, `0e3`).
    public var isZero: Bool { amount.isZero }

    /// -1, 0 or 1.
    public var signum: Int { amount.signum }

    /// The nearest Double (may be ±infinity for absurd exponents).
    public var doubleValue: Double { amount.doubleValue }

    /// `ceil(q × 1000)` rounding away from zero, as the HPA reads metric values (`MilliValue`); saturates at the
    /// Int64 range where apimachinery would overflow.
    public var milliValue: Int64 { amount.scaledInt64(scale: -3) }

    /// The value rounded away from zero to an integer (`Value`), saturating.
    public var integerValue: Int64 { amount.scaledInt64(scale: 0) }

    /// The value rounded away from zero to a multiple of 10^`exponent`, divided by it (`ScaledValue`), saturating.
    public func scaledValue(exponent: Int) -> Int64 { amount.scaledInt64(scale: exponent) }

    /// The value rounded away from zero to a multiple of 10^`exponent` (`RoundUp`); e.g. `-3` for milli.
    public func roundedUp(toExponent exponent: Int) -> Quantity {
        Quantity(amount: amount.roundedAwayFromZero(toExponent: exponent), format: format)
    }

    /// Compares values, not formats: `1Ki == 1024`.
    public static func == (lhs: Quantity, rhs: Quantity) -> Bool { lhs.amount == rhs.amount }
    /// Hashes the value only, consistent with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) { hasher.combine(amount) }
    /// Orders by value, like apimachinery's `Cmp`.
    public static func < (lhs: Quantity, rhs: Quantity) -> Bool { lhs.amount < rhs.amount }

    /// The canonical string (`CanonicalizeBytes`).
    public var description: String { QuantityFormatter.canonical(amount, format: format) }
}

/// Why a quantity string was rejected; the messages are apimachinery's.
public struct QuantityParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which rule the text broke; compare against the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The text does not have the shape `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`.
        public static let format = Code(name: "format")
        /// The suffix is none of `n u m k M G T P E Ki Mi Gi Ti Pi Ei e<int> E<int>`.
        public static let suffix = Code(name: "suffix")
        /// The code's name, `format` or `suffix`.
        public var description: String { name }
    }

    /// Which rule the text broke.
    public let code: Code
    /// The rejected text.
    public let input: String

    /// Thrown by ``Quantity/init(parsing:)``.
    public init(code: Code, input: String) {
        self.code = code
        self.input = input
    }

    /// apimachinery's own message for the code, word for word.
    public var message: String {
        switch code {
        case .suffix: "unable to parse quantity's suffix"
        default: "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        }
    }

    /// `invalid quantity "TEXT": MESSAGE`.
    public var description: String { "invalid quantity \"\(input)\": \(message)" }
}

extension Quantity: Codable {
    /// Encoded as its canonical string, like `MarshalJSON`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Accepts a string (trimmed, like `UnmarshalJSON`) or a bare JSON number.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            let trimmed = text.trimmingASCIIWhitespace()
            do {
                self = try Quantity(parsing: trimmed)
            } catch {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
            }
            return
        }
        let number = try container.decode(Double.self)
        guard let quantity = Quantity(number) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "non-finite quantity")
        }
        self = quantity
    }
}

extension String {
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[first...last]
    }
}

enum QuantityFormatter {
    static let decimalSuffixes: [Int: String] = [
        -9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E",
    ]
    static let binarySuffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

    static func canonical(_ amount: DecimalAmount, format: Quantity.Format) -> String {
        if amount.isZero { return "0" }
        var format = format
        var binaryMagnitude: UInt64?
        if format == .binarySI {
            // Small values and values with a fraction are shown in DecimalSI rather than rounded.
            if let integer = amount.integerMagnitude, integer >= 1024 {
                binaryMagnitude = integer
            } else {
                format = .decimalSI
            }
        }
        let sign = amount.isNegative ? "-" : ""
        if let binaryMagnitude {
            var mantissa = binaryMagnitude
            var power = 0
            while mantissa % 1024 == 0 && power < binarySuffixes.count - 1 {
                mantissa /= 1024
                power += 1
            }
            return sign + String(mantissa) + binarySuffixes[power]
        }
        // Trailing zeros are already in the exponent; lower it to a multiple of 3 by padding the mantissa.
        var exponent = amount.exponent
        var remainder = exponent % 3
        if remainder < 0 { remainder += 3 }
        // An `e` suffix parses back only within Int32: above it, the mantissa takes more zeros (at most the input's
        // length more, since the parsed exponent is an Int32 plus the digits' trailing zeros).
        let largestExponent = Int(Int32.max) - Int(Int32.max) % 3
        if exponent - remainder > largestExponent { remainder = exponent - largestExponent }
        exponent -= remainder
        var mantissa = String(decoding: amount.digits.map { $0 + 48 }, as: UTF8.self)
        mantissa += String(repeating: "0", count: remainder)
        let suffix: String
        switch format {
        case .decimalExponent:
            suffix = exponent == 0 ? "" : "e\(exponent)"
        default:
            // Beyond `E` there is no SI suffix: fall back to `e` notation rather than lose the exponent.
            suffix = decimalSuffixes[exponent] ?? "e\(exponent)"
        }
        return sign + mantissa + suffix
    }
}

enum QuantityParser {
    static let binaryExponents: [String: Int] = ["Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60]
    static let decimalExponents: [String: Int] = [
        "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
    ]
    /// `2^63 - 1`: apimachinery silently caps BinarySI quantities there.
    static let binaryCap = DecimalAmount(Int64.max)

    static func parse(_ text: String) throws(QuantityParseError) -> Quantity {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw QuantityParseError(code: .format, input: text) }
        var position = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            position = 1
        }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
        var integerDigits: [UInt8] = []
        while position < bytes.count, isDigit(bytes[position]) {
            integerDigits.append(bytes[position] - 48)
            position += 1
        }
        var fractionDigits: [UInt8] = []
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            while position < bytes.count, isDigit(bytes[position]) {
                fractionDigits.append(bytes[position] - 48)
                position += 1
            }
        }
        // Suffix: letters from the set, an optional sign, digits, and nothing else.
        let suffixStart = position
        let suffixLetters = Set("eEinumkKMGTP".utf8)
        while position < bytes.count, suffixLetters.contains(bytes[position]) { position += 1 }
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") || bytes[position] == UInt8(ascii: "+") {
            position += 1
        }
        while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        guard position == bytes.count else { throw QuantityParseError(code: .format, input: text) }
        let suffix = String(decoding: bytes[suffixStart...], as: UTF8.self)

        var format: Quantity.Format
        var base10Exponent = 0
        var binaryPower = 0
        if let exponent = decimalExponents[suffix] {
            format = .decimalSI
            base10Exponent = exponent
        } else if let power = binaryExponents[suffix] {
            format = .binarySI
            binaryPower = power
        } else if suffix.utf8.count > 1, suffix.first == "e" || suffix.first == "E",
            let exponent = Int32(suffix.dropFirst())  // strconv.ParseInt then int32: bound it the same way
        {
            format = .decimalExponent
            base10Exponent = Int(exponent)
        } else {
            throw QuantityParseError(code: .suffix, input: text)
        }

        var amount = DecimalAmount(
            digits: integerDigits + fractionDigits,
            exponent: base10Exponent - fractionDigits.count,
            isNegative: negative
        )
        for _ in 0..<(binaryPower / 10) { amount = amount.multiplied(by: 1024) }
        amount = amount.roundedAwayFromZero(toExponent: Quantity.nanoExponent)
        if format == .binarySI {
            if amount.magnitude > binaryCap {
                amount = negative ? binaryCap.negated : binaryCap
            }
            if !amount.isZero, amount.magnitude < DecimalAmount(1) {
                format = .decimalSI
            }
        }
        return Quantity(amount: amount, format: format)
    }
}
