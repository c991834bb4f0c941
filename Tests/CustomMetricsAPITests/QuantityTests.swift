import AccelMetricsTesting
import CustomMetricsAPI
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("Quantity")
struct QuantityTests {
    /// Parse → canonical string: reference §2 and apimachinery's `quantity_test.go` / doc-comment examples.
    static let canonicalCases: [(String, String)] = [
        // reference examples, as strings
        ("0.735", "735m"), ("73.5", "73500m"), ("1.5", "1500m"), ("100", "100"), ("1500", "1500"), ("12000", "12k"),
        ("0.0005", "500u"),
        // zero in every spelling
        ("0", "0"), ("0n", "0"), ("0u", "0"), ("0m", "0"), ("0Ki", "0"), ("0k", "0"), ("0Mi", "0"), ("0M", "0"),
        ("0Gi", "0"), ("0G", "0"), ("0Ti", "0"), ("0T", "0"), ("-0", "0"), ("0e3", "0"), ("0.000", "0"),
        // DecimalSI suffixes keep themselves
        ("1n", "1n"), ("1u", "1u"), ("1m", "1m"), ("1", "1"), ("1k", "1k"), ("1M", "1M"), ("1G", "1G"),
        ("1T", "1T"), ("1P", "1P"), ("1E", "1E"), ("5n", "5n"), ("4u", "4u"), ("3m", "3m"), ("9", "9"),
        ("8k", "8k"), ("50k", "50k"), ("7M", "7M"), ("6G", "6G"), ("5T", "5T"), ("40T", "40T"), ("300T", "300T"),
        ("2P", "2P"),
        // BinarySI
        ("1Ki", "1Ki"), ("8Ki", "8Ki"), ("7Mi", "7Mi"), ("6Gi", "6Gi"), ("5Ti", "5Ti"), ("4Pi", "4Pi"),
        ("3Ei", "3Ei"), ("10Ti", "10Ti"), ("100Ti", "100Ti"), ("1.5Gi", "1536Mi"), ("1024Ki", "1Mi"),
        ("1025Ki", "1025Ki"), ("1024Mi", "1Gi"), ("10Mi", "10Mi"), ("0.5Mi", "512Ki"),
        // BinarySI below 1024 or with a fraction is shown as DecimalSI
        ("0.5Ki", "512"), ("1.1Ki", "1126400m"), ("0.001Ki", "1024m"), ("-1Ki", "-1Ki"),
        // BinarySI is capped at 2^63-1
        ("8Ei", "9223372036854775807"), ("-8Ei", "-9223372036854775807"),
        // DecimalExponent keeps `e` notation
        ("1e3", "1e3"), ("1E3", "1e3"), ("1e6", "1e6"), ("1e9", "1e9"), ("1e12", "1e12"), ("1e15", "1e15"),
        ("1e18", "1e18"), ("1e-3", "1e-3"), ("1e-6", "1e-6"), ("1e-9", "1e-9"), ("12e6", "12e6"),
        ("12000e3", "12e6"), ("1.5e9", "1500e6"), ("5.5e-3", "5500e-6"), ("1500e0", "1500"), ("1e+3", "1e3"),
        ("0.5e0", "500e-3"),
        // precision: exact to nano, finer rounds away from zero
        ("0.1m", "100u"), ("0.1", "100m"), ("100m", "100m"), ("1000m", "1"), ("1500m", "1500m"),
        ("1000000u", "1"), ("1000n", "1u"), ("1000000000n", "1"), ("123456789n", "123456789n"),
        ("0.9n", "1n"), ("1.01n", "2n"), ("1e-12", "1e-9"), ("-1e-12", "-1e-9"), ("0.0000000001", "1n"),
        ("-0.0000000001", "-1n"), ("1.0000000001", "1000000001n"),
        // sign and leading/trailing zeros
        ("-1", "-1"), ("-1.5", "-1500m"), ("-0.1m", "-100u"), ("+5", "5"), ("007", "7"), ("0.50", "500m"),
        ("1.0", "1"), ("1.", "1"), (".5", "500m"), ("+.5", "500m"),
        // large values: not capped for DecimalSI; past `E` the suffix falls back to `e` (apimachinery's fix)
        ("9223372036854775807", "9223372036854775807"), ("18446744073709551616", "18446744073709551616"),
        ("100000000000000000000", "100E"), ("1000E", "1e21"), ("1e21", "1e21"), ("1.5E", "1500P"),
        // exponents at Int32's edge: the canonical `e` suffix must parse back (fuzz finding: `10e2147483649` did not)
        ("1e2147483647", "10e2147483646"), ("1000e2147483647", "10000e2147483646"), ("10e2147483646", "10e2147483646"),
        // apimachinery's lenient scanner: a missing number is zero
        ("-", "0"), ("+", "0"), (".", "0"), ("e3", "0"),
    ]

    @Test("parse then canonical string", arguments: canonicalCases)
    func canonical(input: String, expected: String) throws {
        let quantity = try Quantity(parsing: input)
        #expect(quantity.description == expected)
        // The canonical string is a fixed point and denotes the same value.
        let again = try Quantity(parsing: expected)
        #expect(again == quantity)
        #expect(again.description == expected)
    }

    @Test("the table is large enough")
    func tableSize() {
        #expect(Self.canonicalCases.count + Self.doubleCases.count + Self.invalidCases.count >= 60)
    }

    /// From a Double: the shortest round-tripping decimal, rounded away from zero to nano.
    static let doubleCases: [(Double, String)] = [
        (0.735, "735m"), (73.5, "73500m"), (1.5, "1500m"), (100, "100"), (1500, "1500"), (12000, "12k"),
        (0.0005, "500u"), (0.5, "500m"), (1.5e9, "1500M"), (0, "0"), (-0.0, "0"), (-2.5, "-2500m"),
        (1e-12, "1n"), (-1e-12, "-1n"), (1.5e-9, "2n"), (0.1, "100m"), (1e20, "100E"), (1e21, "1e21"),
        (1e300, "1e300"), (42, "42"), (3.14159, "3141590u"), (99.99, "99990m"), (1.0 / 3.0, "333333334n"),
        (2.0 / 3.0, "666666667n"), (123456.789, "123456789m"), (0.001, "1m"), (1e-9, "1n"), (65.25, "65250m"),
        (1e6, "1M"), (2.5e6, "2500k"), (1024, "1024"), (9.223372036854776e18, "9223372036854776k"),
    ]

    @Test("from Double", arguments: doubleCases)
    func fromDouble(value: Double, expected: String) throws {
        let quantity = try #require(Quantity(value))
        #expect(quantity.description == expected)
    }

    @Test("NaN and infinities are never quantities", arguments: [Double.nan, .infinity, -.infinity])
    func nonFinite(value: Double) {
        #expect(Quantity(value) == nil)
    }

    static let invalidCases: [(String, QuantityParseError.Code)] = [
        ("", .format), ("1.1.1", .format), ("abc", .format), ("1 ", .format), (" 1", .format), ("1K", .suffix),
        ("1ki", .suffix), ("1e", .suffix), ("1Mi3", .suffix), ("1i", .suffix), ("1Z", .format), ("1e3.5", .format),
        ("--1", .suffix), ("1e1e1", .format), ("1ee3", .suffix), ("1e99999999999", .suffix), ("1,5", .format),
        ("0x10", .format), ("1 Ki", .format), ("1Kii", .suffix), ("NaN", .format), ("Inf", .format),
    ]

    @Test("invalid strings are refused with apimachinery's error", arguments: invalidCases)
    func invalid(input: String, code: QuantityParseError.Code) {
        #expect(throws: QuantityParseError(code: code, input: input)) { try Quantity(parsing: input) }
    }

    @Test(
        "MilliValue rounds away from zero, as the HPA reads it",
        arguments: [
            ("1n", 1), ("-1n", -1), ("1.5", 1500), ("0.0005", 1), ("1Ki", 1_024_000), ("735m", 735),
            ("1e30", Int64.max), ("-1e30", Int64.min), ("0", 0), ("999999n", 1), ("1000001n", 2), ("2.0000001", 2001), ("-2.0000001", -2001),
        ] as [(String, Int64)]
    )
    func milliValue(input: String, expected: Int64) throws {
        #expect(try Quantity(parsing: input).milliValue == expected)
    }

    @Test("integer, milli and scaled constructors")
    func constructors() {
        #expect(Quantity(milli: 735).description == "735m")
        #expect(Quantity(milli: 1500).description == "1500m")
        #expect(Quantity(milli: 2000).description == "2")
        #expect(Quantity(1536, format: .binarySI).description == "1536")  // 1.5Ki is not an integer of Ki
        #expect(Quantity(2048, format: .binarySI).description == "2Ki")
        #expect(Quantity(5, exponent: -12).description == "1n")
        #expect(Quantity(12, exponent: 6).description == "12M")
        #expect(Quantity(Int64.min).description == "-9223372036854775808")
        #expect(Quantity(0, exponent: 40).description == "0")
        #expect(Quantity(1, exponent: 4).roundedUp(toExponent: 6).description == "1M")
        #expect(Quantity(1234, exponent: -6).roundedUp(toExponent: -3).description == "2m")
    }

    @Test("values compare regardless of format")
    func comparison() throws {
        #expect(try Quantity(parsing: "1Ki") == Quantity(parsing: "1024"))
        #expect(try Quantity(parsing: "1k") < Quantity(parsing: "1Ki"))
        #expect(try Quantity(parsing: "-1") < Quantity(parsing: "1n"))
        #expect(try Quantity(parsing: "-2") < Quantity(parsing: "-1"))
        #expect(try Quantity(parsing: "999m") < Quantity(parsing: "1"))
        #expect(try Quantity(parsing: "1e21") > Quantity(parsing: "999E"))
        #expect(try Set([Quantity(parsing: "1k"), Quantity(parsing: "1000"), Quantity(parsing: "1e3")]).count == 1)
    }

    @Test("JSON: a string in, the canonical string out")
    func json() throws {
        let decoded = try JSONDecoder().decode([Quantity].self, from: Data(#"[" 1.5 ", "2Gi", 42, "0"]"#.utf8))
        #expect(decoded.map(\.description) == ["1500m", "2Gi", "42", "0"])
        let encoded = String(decoding: try APIJSON.encode(decoded), as: UTF8.self)
        #expect(encoded == #"["1500m","2Gi","42","0"]"#)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Quantity].self, from: Data(#"["1Z"]"#.utf8)) }
    }

    @Test("property: canonical strings parse back to the same value, and re-canonicalize to themselves")
    func propertyExact() throws {
        var random = SeededRandom(seed: 0x5EED_0001)
        let formats = Quantity.Format.allCases
        for _ in 0..<20_000 {
            let magnitude = Int64.random(in: 0...Int64.max, using: &random) >> Int.random(in: 0...62, using: &random)
            let mantissa = Bool.random(using: &random) ? -magnitude : magnitude
            let format = formats[Int.random(in: 0..<formats.count, using: &random)]
            // BinarySI parsing caps at 2^63-1, so binary values stay within it.
            let exponent = format == .binarySI
                ? Int.random(in: -15...0, using: &random) : Int.random(in: -15...30, using: &random)
            let quantity = Quantity(mantissa, exponent: exponent, format: format)
            let text = quantity.description
            let parsed = try Quantity(parsing: text)
            #expect(parsed == quantity, "\(mantissa)e\(exponent) → \(text)")
            // A suffix-less BinarySI string re-parses as DecimalSI (as in apimachinery: "2000" → "2k"), so the fixed
            // point is the string after one parse.
            let recanonical = parsed.description
            #expect(try Quantity(parsing: recanonical).description == recanonical, "\(text) → \(recanonical)")
            if format != .binarySI {
                #expect(recanonical == text, "\(text) is not a fixed point")
            }
            // Nothing finer than nano survives, and nothing else is lost.
            if exponent >= -9 {
                #expect(parsed == Quantity(mantissa, exponent: exponent))
            }
        }
    }

    @Test("property: Double → string → parse keeps the value to nano and to the last bit of precision")
    func propertyDouble() throws {
        var random = SeededRandom(seed: 0x5EED_0002)
        for _ in 0..<20_000 {
            let decade = Double(Int.random(in: -12...25, using: &random))
            var value = Double.random(in: 1..<10, using: &random) * pow10(decade)
            if Bool.random(using: &random) { value = -value }
            let quantity = try #require(Quantity(value))
            let text = quantity.description
            let parsed = try Quantity(parsing: text)
            #expect(parsed == quantity)
            #expect(try Quantity(parsing: text).description == text)
            let error = abs(parsed.doubleValue - value)
            #expect(error <= 1e-9 + abs(value) * 1e-15, "\(value) → \(text)")
            // MilliValue never moves toward zero.
            if abs(value) < 9e15 {
                let milli = Double(parsed.milliValue) / 1000
                #expect(abs(milli) + 1e-12 >= abs(value) * (1 - 1e-15), "\(value) → \(text) milli \(milli)")
            }
        }
    }

    private func pow10(_ exponent: Double) -> Double {
        var result = 1.0
        let steps = Int(abs(exponent))
        for _ in 0..<steps { result *= 10 }
        return exponent < 0 ? 1 / result : result
    }
}
