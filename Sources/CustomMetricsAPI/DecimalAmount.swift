/// An exact signed decimal, `digits × 10^exponent`, the arithmetic behind `Quantity`.
///
/// apimachinery keeps quantities as an int64 with a scale or as an arbitrary-precision `inf.Dec`; a digit string with
/// an exponent covers both without a big-integer dependency, and a hostile `1e2000000000` costs a few bytes, not a
/// two-billion-digit number.
struct DecimalAmount: Hashable, Sendable {
    /// Most significant first, each 0...9; no leading or trailing zeros. Empty means zero.
    private(set) var digits: [UInt8]
    private(set) var exponent: Int
    private(set) var isNegative: Bool

    static let zero = DecimalAmount(digits: [], exponent: 0, isNegative: false)

    init(digits: [UInt8], exponent: Int, isNegative: Bool) {
        self.digits = digits
        self.exponent = exponent
        self.isNegative = isNegative
        normalize()
    }

    init(_ value: Int64) {
        var digits: [UInt8] = []
        var magnitude = value.magnitude
        while magnitude > 0 {
            digits.append(UInt8(magnitude % 10))
            magnitude /= 10
        }
        self.init(digits: digits.reversed(), exponent: 0, isNegative: value < 0)
    }

    var isZero: Bool { digits.isEmpty }

    /// -1, 0 or 1.
    var signum: Int { isZero ? 0 : (isNegative ? -1 : 1) }

    private mutating func normalize() {
        if let first = digits.firstIndex(where: { $0 != 0 }) {
            if first > 0 { digits.removeFirst(first) }
        } else {
            digits = []
        }
        while let last = digits.last, last == 0 {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty {
            exponent = 0
            isNegative = false
        }
    }

    var negated: DecimalAmount {
        DecimalAmount(digits: digits, exponent: exponent, isNegative: !isNegative)
    }

    var magnitude: DecimalAmount {
        DecimalAmount(digits: digits, exponent: exponent, isNegative: false)
    }

    /// Rounds away from zero to a multiple of 10^`scale` (apimachinery's `inf.RoundUp` on the magnitude): a non-zero
    /// value never becomes zero.
    func roundedAwayFromZero(toExponent scale: Int) -> DecimalAmount {
        guard !isZero, exponent < scale else { return self }
        let drop = scale - exponent
        if drop >= digits.count {
            return DecimalAmount(digits: [1], exponent: scale, isNegative: isNegative)
        }
        // Normalized: the dropped tail ends in a non-zero digit, so the value is inexact and the kept part grows by one.
        var kept = Array(digits[0..<(digits.count - drop)])
        var index = kept.count - 1
        while true {
            if kept[index] == 9 {
                kept[index] = 0
                if index == 0 {
                    kept.insert(1, at: 0)
                    break
                }
                index -= 1
            } else {
                kept[index] += 1
                break
            }
        }
        return DecimalAmount(digits: kept, exponent: scale, isNegative: isNegative)
    }

    /// Multiplies by a small positive factor (used for binary suffixes, 1024 at a time).
    func multiplied(by factor: UInt64) -> DecimalAmount {
        precondition(factor > 0 && factor <= 1 << 20)
        var result: [UInt8] = []
        result.reserveCapacity(digits.count + 8)
        var carry: UInt64 = 0
        for digit in digits.reversed() {
            let product = UInt64(digit) * factor + carry
            result.append(UInt8(product % 10))
            carry = product / 10
        }
        while carry > 0 {
            result.append(UInt8(carry % 10))
            carry /= 10
        }
        return DecimalAmount(digits: result.reversed(), exponent: exponent, isNegative: isNegative)
    }

    /// The magnitude as an integer when it is one and fits.
    var integerMagnitude: UInt64? {
        guard exponent >= 0 else { return nil }
        if isZero { return 0 }
        guard digits.count + exponent <= 20 else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = shifted.addingReportingOverflow(UInt64(digit))
            if overflow1 || overflow2 { return nil }
            value = added
        }
        for _ in 0..<exponent {
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            value = shifted
        }
        return value
    }

    /// The value rounded away from zero to an integer multiple of 10^`scale`, divided by 10^`scale`, saturating at
    /// the Int64 range (apimachinery's `ScaledValue`, which overflows silently instead).
    func scaledInt64(scale: Int) -> Int64 {
        let rounded = roundedAwayFromZero(toExponent: scale)
        if rounded.isZero { return 0 }
        let shifted = DecimalAmount(digits: rounded.digits, exponent: rounded.exponent - scale, isNegative: false)
        guard let magnitude = shifted.integerMagnitude else { return isNegative ? .min : .max }
        if isNegative {
            return magnitude > UInt64(Int64.max) + 1 ? .min : Int64(truncatingIfNeeded: 0 &- magnitude)
        }
        return magnitude > UInt64(Int64.max) ? .max : Int64(magnitude)
    }

    /// The nearest Double (correctly rounded by the standard library's decimal parser); ±infinity beyond range.
    var doubleValue: Double {
        if isZero { return 0 }
        let text = (isNegative ? "-" : "") + String(decoding: digits.map { $0 + 48 }, as: UTF8.self) + "e\(exponent)"
        if let value = Double(text) { return value }
        // Exponents beyond what the parser takes: the magnitude is far outside Double's range either way.
        let huge = exponent + digits.count > 0
        return huge ? (isNegative ? -.infinity : .infinity) : (isNegative ? -0.0 : 0)
    }

    /// Digits of the exact shortest decimal form of a finite Double (Swift prints the shortest round-tripping form).
    init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == 0 {
            self = .zero
            return
        }
        var text = Substring(value.description)
        var negative = false
        if text.first == "-" {
            negative = true
            text = text.dropFirst()
        }
        var digits: [UInt8] = []
        var exponent = 0
        var seenPoint = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if let digit = character.wholeNumberValue, character.isASCII {
                digits.append(UInt8(digit))
                if seenPoint { exponent -= 1 }
            } else if character == "." {
                seenPoint = true
            } else if character == "e" || character == "E" {
                guard let power = Int(text[text.index(after: index)...]) else { return nil }
                exponent += power
                break
            } else {
                return nil
            }
            index = text.index(after: index)
        }
        self.init(digits: digits, exponent: exponent, isNegative: negative)
    }
}

extension DecimalAmount: Comparable {
    static func < (lhs: DecimalAmount, rhs: DecimalAmount) -> Bool {
        if lhs.signum != rhs.signum { return lhs.signum < rhs.signum }
        if lhs.signum == 0 { return false }
        let magnitudeOrder = compareMagnitude(lhs, rhs)
        return lhs.isNegative ? magnitudeOrder > 0 : magnitudeOrder < 0
    }

    /// -1, 0, 1 for |lhs| against |rhs|, both non-zero.
    private static func compareMagnitude(_ lhs: DecimalAmount, _ rhs: DecimalAmount) -> Int {
        // Position of the most significant digit.
        let lhsTop = lhs.digits.count + lhs.exponent
        let rhsTop = rhs.digits.count + rhs.exponent
        if lhsTop != rhsTop { return lhsTop < rhsTop ? -1 : 1 }
        let length = max(lhs.digits.count, rhs.digits.count)
        for position in 0..<length {
            let left = position < lhs.digits.count ? lhs.digits[position] : 0
            let right = position < rhs.digits.count ? rhs.digits[position] : 0
            if left != right { return left < right ? -1 : 1 }
        }
        return 0
    }
}
