import AccelMetricsTesting
import ConfigYAML
import Foundation
import Testing

/// The configuration files' YAML (libyaml underneath), base64 and percent-decoding, and the bounded file read that
/// every configuration file goes through.
@Suite struct YAMLDocumentTests {
    static func parse(_ text: String, maxDepth: Int = 32) throws(ConfigError) -> ConfigValue {
        try YAMLDocument.parse(Array(text.utf8), maxDepth: maxDepth)
    }

    @Test func mapsListsScalarsAndNullsKeepTheirOrder() throws {
        let value = try Self.parse("""
            b: one
            a: [x, "y", 3]
            c:
              nested: ~
              quoted: "null"
            d:
            """)
        #expect(value == .map([
            (key: "b", value: .scalar("one")),
            (key: "a", value: .list([.scalar("x"), .scalar("y"), .scalar("3")])),
            (key: "c", value: .map([(key: "nested", value: .null), (key: "quoted", value: .scalar("null"))])),
            (key: "d", value: .null),
        ]))
    }

    @Test func anEmptyDocumentIsNull() throws {
        #expect(try Self.parse("") == .null)
        #expect(try Self.parse("# only a comment\n") == .null)
    }

    @Test(arguments: [
        ("a: [1, 2\nb: 3\n", "YAML line"),
        ("a: [1, 2", "YAML line"),
        ("a: 1\na: 2\n", "duplicate key \"a\""),
        ("base: &x {k: v}\ncopy: *x\n", "aliases are not supported"),
        ("a: &x 1\nb: *x", "aliases are not supported"),
        ("? [1, 2]\n: value\n", "a map key must be a plain value"),
        ("{[1]: 2}", "a map key must be a plain value"),
        ("a: 1\n---\nb: 2\n", "only one document is allowed"),
        ("--- 1\n--- 2", "only one document is allowed"),
    ])
    func mistakesAreOneClearError(text: String, mentions: String) {
        #expect {
            try Self.parse(text)
        } throws: { error in
            "\(error)".contains(mentions)
        }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: ConfigError.self) { try Self.parse(deep) }
        #expect(try Self.parse(deep, maxDepth: 41) != .null)
        let veryDeep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: ConfigError.self) { try Self.parse(veryDeep) }
        let justInside = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        #expect(try Self.parse(justInside) != .null)
    }

    @Test func bytesThatAreNotUTF8AreAnErrorNotACrash() {
        #expect(throws: ConfigError.self) { try YAMLDocument.parse([0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]) }
    }
}

@Suite struct EncodingTests {
    @Test func base64RoundTripsEveryLength() {
        var random = SeededRandom(seed: 7)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let text = Base64.encode(bytes)
            #expect(text.utf8.count == (length + 2) / 3 * 4)
            #expect(Base64.decode(text) == bytes)
        }
    }

    @Test func base64KnownValuesURLSafeAlphabetAndWhitespace() {
        #expect(Base64.encode(Array("Man".utf8)) == "TWFu")
        #expect(Base64.encode(Array("Ma".utf8)) == "TWE=")
        #expect(Base64.decode("TWE") == Array("Ma".utf8))
        #expect(Base64.decode("TW\nFu\r\n") == Array("Man".utf8))
        #expect(Base64.decode("-_8=") == [0xFB, 0xFF])
        #expect(Base64.decode("+/8=") == [0xFB, 0xFF])
    }

    @Test func base64RefusesWhatIsNotBase64() {
        #expect(Base64.decode("TWFu!") == nil)
        #expect(Base64.decode("T") == nil)
        #expect(Base64.decode("TWFuT") == nil)
        #expect(Base64.decode("é") == nil)
    }

    @Test func percentDecoding() {
        #expect(PercentEncoding.decode("Bearer%20t%2Fx") == "Bearer t/x")
        #expect(PercentEncoding.decode("%e2%82%ac") == "€")
        #expect(PercentEncoding.decode("plain") == "plain")
        #expect(PercentEncoding.decode("%2") == nil)
        #expect(PercentEncoding.decode("%zz") == nil)
        #expect(PercentEncoding.decode("%FF") == nil)  // not UTF-8 once decoded
    }
}

@Suite struct ConfigFileTests {
    @Test func readsWholeFilesUpToTheLimit() throws {
        let directory = TemporaryDirectory(prefix: "accel-configfile")
        defer { directory.remove() }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        let url = try directory.write("big", bytes: bytes)
        #expect(try ConfigFile.read(url.path) == bytes)
        #expect(try ConfigFile.read(url.path, limit: bytes.count) == bytes)
        #expect {
            try ConfigFile.read(url.path, limit: 100_000)
        } throws: { ($0 as? ConfigFile.ReadError)?.reason == "larger than 100000 bytes" }
    }

    @Test func aMissingFileOrADirectoryIsAReadErrorWithItsErrno() {
        let directory = TemporaryDirectory(prefix: "accel-configfile")
        defer { directory.remove() }
        #expect {
            try ConfigFile.read(directory.path("absent"))
        } throws: { error in
            let error = error as? ConfigFile.ReadError
            return error?.errno == ENOENT && error?.description.hasPrefix("cannot read \(directory.path("absent")):") == true
        }
        #expect { try ConfigFile.read(directory.path) } throws: { ($0 as? ConfigFile.ReadError)?.errno == EISDIR }
    }
}
