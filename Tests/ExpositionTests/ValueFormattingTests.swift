import Exposition
import Testing

@Suite("Sample values and timestamps")
struct ValueFormattingTests {
    @Test(
        "values are spelled the same way in both formats",
        arguments: [
            (0.0, "0"), (-0.0, "0"), (1, "1"), (-3, "-3"), (80_000_000_000, "80000000000"),
            (9_007_199_254_740_991, "9007199254740991"), (-9_007_199_254_740_991, "-9007199254740991"),
            (0.42, "0.42"), (-2.5, "-2.5"), (1e-05, "1e-05"), (0.1 + 0.2, "0.30000000000000004"),
            (123_456.789, "123456.789"),
            // From 2^53 on not every integer is representable, so these fall back to the round-trip form.
            (9_007_199_254_740_992, "9007199254740992.0"), (1e20, "1e+20"), (-1e300, "-1e+300"),
            (.leastNonzeroMagnitude, "5e-324"), (.greatestFiniteMagnitude, "1.7976931348623157e+308"),
            (.infinity, "+Inf"), (-.infinity, "-Inf"), (.nan, "NaN"), (-Double.nan, "NaN"),
            (.signalingNaN, "NaN"), (Double(nan: 0x1234, signaling: false), "NaN"),
        ] as [(Double, String)]
    )
    func value(_ value: Double, expected: String) {
        for format in ExpositionFormat.allCases {
            #expect(sampleLine(value: value, format) == "probe \(expected)")
        }
    }

    @Test(
        "text timestamps are integer milliseconds",
        arguments: [(1_700_000_000_123, "1700000000123"), (0, "0"), (-1500, "-1500")] as [(Int64, String)]
    )
    func textTimestamp(_ milliseconds: Int64, expected: String) {
        #expect(sampleLine(value: 1, timestamp: milliseconds, .text) == "probe 1 \(expected)")
    }

    @Test(
        "OpenMetrics timestamps are decimal seconds without trailing zeros",
        arguments: [
            (1_700_000_000_123, "1700000000.123"), (1_700_000_000_000, "1700000000"),
            (1_700_000_000_100, "1700000000.1"), (1_700_000_000_120, "1700000000.12"),
            (1_700_000_000_005, "1700000000.005"), (0, "0"), (999, "0.999"), (-1500, "-1.5"),
            (Int64.max, "9223372036854775.807"), (Int64.min, "-9223372036854775.808"),
        ] as [(Int64, String)]
    )
    func openMetricsTimestamp(_ milliseconds: Int64, expected: String) {
        #expect(sampleLine(value: 1, timestamp: milliseconds, .openMetrics) == "probe 1 \(expected)")
    }
}
