@testable import LineLogging
import Testing

@Suite struct LogFormatTests {
    @Test func logfmtQuotesOnlyWhatNeedsIt() {
        let line = LineLogHandler.logfmt([("level", "info"), ("msg", "card1 stopped \"answering\""), ("path", "/sys/a=b"), ("empty", "")])
        #expect(line == "level=info msg=\"card1 stopped \\\"answering\\\"\" path=\"/sys/a=b\" empty=\"\"\n")
    }

    @Test func jsonEscapesControlCharacters() {
        let line = LineLogHandler.json([("msg", "a\"b\\c\nd\u{1}")])
        #expect(line == "{\"msg\":\"a\\\"b\\\\c\\nd\\u0001\"}\n")
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        let ts = LineLogHandler.timestamp()
        #expect(ts.count == 24)
        #expect(ts.hasSuffix("Z"))
        #expect(ts.dropFirst(10).first == "T")
    }
}
