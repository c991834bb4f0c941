import AccelMetricsTesting
import CustomMetricsAPI
import Testing

@Suite("Label selectors")
struct LabelSelectorTests {
    /// Accepted selectors and their canonical form (`Selector.String()` of apimachinery's parse).
    static let validCases: [(String, String)] = [
        ("", ""), ("   ", ""), ("a=b", "a=b"), ("a==b", "a==b"), ("a!=b", "a!=b"), ("a", "a"), ("!a", "!a"),
        ("! a", "!a"), ("a in (b,c)", "a in (b,c)"), ("a in (c,b)", "a in (b,c)"), ("a in (b,b)", "a in (b)"),
        ("a notin (b)", "a notin (b)"), ("a in ()", "a in ()"), ("a in (,)", "a in ()"), ("a in (b,)", "a in (,b)"),
        ("a in (,b)", "a in (,b)"), ("a in (b,,c)", "a in (,b,c)"), ("a=", "a="), ("a=,b", "a=,b"),
        ("a!=", "a!="), ("a==", "a=="), ("b=1,a=2", "a=2,b=1"), ("a>1", "a>1"), ("a<10", "a<10"), ("a>0", "a>0"),
        ("x=a,x!=b", "x=a,x!=b"), ("example.com/name=v", "example.com/name=v"),
        ("app.kubernetes.io/name in (web, api)", "app.kubernetes.io/name in (api,web)"), ("a = b", "a=b"),
        ("a\t=\tb", "a=b"), ("a\n==\nb", "a==b"), ("in=b", "in=b"), ("notin in (in)", "notin in (in)"),
        ("a in(b)", "a in (b)"), ("a in ( b , c )", "a in (b,c)"), ("A_b.c-d=E.f_g-h", "A_b.c-d=E.f_g-h"),
        ("a=b,c,!d", "a=b,c,!d"), ("z,y,x", "x,y,z"), ("1=2", "1=2"), ("a-b=c", "a-b=c"), ("a.b/c=d", "a.b/c=d"),
        ("a,b", "a,b"), ("a=b ,c=d", "a=b,c=d"), ("!a,!b", "!a,!b"), ("a notin (b,c),a", "a notin (b,c),a"),
        ("k8s.io/a-b_c.d=v.1-2_3", "k8s.io/a-b_c.d=v.1-2_3"), ("a>9223372036854775807", "a>9223372036854775807"),
        (String(repeating: "k", count: 63) + "=" + String(repeating: "v", count: 63),
         String(repeating: "k", count: 63) + "=" + String(repeating: "v", count: 63)),
        (String(repeating: "p", count: 253) + "/k", String(repeating: "p", count: 253) + "/k"),
    ]

    @Test("valid selectors and their canonical form", arguments: validCases)
    func valid(input: String, canonical: String) throws {
        let selector = try LabelSelector(parsing: input)
        #expect(selector.description == canonical)
        #expect(try LabelSelector(parsing: canonical) == selector)
        #expect(selector.isEverything == canonical.isEmpty)
    }

    static let invalidCases: [String] = [
        "a=b c", "a b", "=a", "a=b=c", "a in b", "a in (b", "a in (b c)", "a notin", "a in", "a>b", "a>", "a<1.5",
        "a>-1", "!a=b", "!", "!!a", "a,", ",a", "a,,b", "a=b,", "-a=b", "a-=b", "a/b/c=d", "/a=b", "A.com/b=c",
        "a/=b", String(repeating: "k", count: 64) + "=v", "a=" + String(repeating: "v", count: 64), "a=b!",
        "a=(b)", "a in (b))", "a===b", "a=-b", "a=b_", "a=é", "é=a", "a in (b,c", "a>=1", "a<>1", "a!b", "(a)", ")",
        "a=b\u{0}c", "a in ((b))", "a=b c=d", "a notin (b,!)", "x in (a b)", "a>1,b<x",
        String(repeating: "p", count: 254) + "/k=v", "-.com/k", "a_b.com/k", "a in (b,=)", "a=b,,c", "a=b;c=d",
    ]

    @Test("invalid selectors are refused", arguments: invalidCases)
    func invalid(input: String) {
        #expect(throws: LabelSelectorError.self) { try LabelSelector(parsing: input) }
    }

    @Test("the tables are large enough")
    func tableSize() {
        #expect(Self.validCases.count + Self.invalidCases.count >= 60)
        #expect(Self.invalidCases.count >= 30)
    }

    @Test(
        "error messages say what was found and what was expected",
        arguments: [
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            ("a in b", "found 'b' expected: '('"),
            ("a!b", "found '!', expected: in, notin, =, ==, !=, gt, lt"),
            ("a>b", "for 'Gt', 'Lt' operators, the value must be an integer"),
            ("-a=b", "invalid label key \"-a\""),
            ("a=b_", "invalid value \"b_\" for label \"a\""),
        ]
    )
    func messages(input: String, fragment: String) {
        do {
            _ = try LabelSelector(parsing: input)
            Issue.record("accepted \(input)")
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    static let matchCases: [(String, [String: String], Bool)] = [
        ("", [:], true), ("", ["a": "b"], true), ("a=b", ["a": "b"], true), ("a=b", ["a": "c"], false),
        ("a=b", [:], false), ("a==b", ["a": "b"], true), ("a!=b", ["a": "b"], false), ("a!=b", ["a": "c"], true),
        ("a!=b", [:], true), ("a", ["a": ""], true), ("a", ["b": "a"], false), ("!a", [:], true),
        ("!a", ["a": "x"], false), ("a in (x,y)", ["a": "y"], true), ("a in (x,y)", ["a": "z"], false),
        ("a in (x,y)", [:], false), ("a notin (x,y)", ["a": "z"], true), ("a notin (x,y)", ["a": "x"], false),
        ("a notin (x,y)", [:], true), ("a=", ["a": ""], true), ("a=", [:], false), ("a in ()", ["a": ""], true),
        ("a>5", ["a": "6"], true), ("a>5", ["a": "5"], false), ("a>5", ["a": "x"], false), ("a>5", [:], false),
        ("a<5", ["a": "-7"], true), ("a<5", ["a": "05"], false), ("a=b,c!=d", ["a": "b", "c": "e"], true),
        ("a=b,c!=d", ["a": "b", "c": "d"], false), ("app=web,tier in (gpu)", ["app": "web", "tier": "gpu", "x": "y"], true),
    ]

    @Test("matching follows apimachinery's Requirement.Matches", arguments: matchCases)
    func matching(selector: String, labels: [String: String], expected: Bool) throws {
        #expect(try LabelSelector(parsing: selector).matches(labels) == expected)
    }

    @Test("requirements are validated when built directly")
    func directRequirements() throws {
        #expect(throws: LabelSelectorError.self) { try LabelSelector.Requirement(key: "a", operator: .in, values: []) }
        #expect(throws: LabelSelectorError.self) {
            try LabelSelector.Requirement(key: "a", operator: .equals, values: ["x", "y"])
        }
        #expect(throws: LabelSelectorError.self) { try LabelSelector.Requirement(key: "a", operator: .exists, values: ["x"]) }
        #expect(throws: LabelSelectorError.self) { try LabelSelector.Requirement(key: "a b", operator: .exists) }
        let selector = LabelSelector(requirements: [
            try .init(key: "b", operator: .notIn, values: ["y", "x", "y"]), try .init(key: "a", operator: .exists),
        ])
        #expect(selector.description == "a,b notin (x,y)")
    }

    // MARK: property tests

    /// A requirement as the test understands it, with its own oracle for matching.
    struct Spec {
        var key: String
        var op: LabelSelector.Requirement.Operator
        var values: [String]

        func holds(_ labels: [String: String]) -> Bool {
            let value = labels[key]
            switch op {
            case .equals, .doubleEquals, .in: return value.map(values.contains) ?? false
            case .notEquals, .notIn: return value.map { !values.contains($0) } ?? true
            case .exists: return value != nil
            case .doesNotExist: return value == nil
            case .greaterThan: return value.flatMap { Int64($0) }.map { $0 > Int64(values[0])! } ?? false
            case .lessThan: return value.flatMap { Int64($0) }.map { $0 < Int64(values[0])! } ?? false
            }
        }

        /// A random but equivalent spelling: whitespace, `in` lists in any order with repeats.
        func spelled(using random: inout SeededRandom) -> String {
            func space() -> String { ["", " ", "  ", "\t"][Int.random(in: 0..<4, using: &random)] }
            switch op {
            case .exists: return key
            case .doesNotExist: return "!" + space() + key
            case .in, .notIn:
                var members = values + (Bool.random(using: &random) ? [values[0]] : [])
                members.shuffle(using: &random)
                let list = members.map { space() + $0 + space() }.joined(separator: ",")
                return key + " " + (op == .in ? "in" : "notin") + space() + "(" + list + ")"
            case .equals: return key + space() + "=" + space() + values[0]
            case .doubleEquals: return key + space() + "==" + space() + values[0]
            case .notEquals: return key + space() + "!=" + space() + values[0]
            case .greaterThan: return key + space() + ">" + space() + values[0]
            case .lessThan: return key + space() + "<" + space() + values[0]
            }
        }
    }

    static let keys = ["app", "tier", "example.com/gpu", "k8s.io/x-y", "in", "a.b_c-d", "Z9"]
    static let values = ["web", "api", "gpu", "", "1", "42", "-", "x.y"]

    static func randomSpec(using random: inout SeededRandom) -> Spec {
        let key = keys[Int.random(in: 0..<keys.count, using: &random)]
        let op = LabelSelector.Requirement.Operator.allCases.randomElement(using: &random)!
        let pool = values.filter { $0 != "-" }
        switch op {
        case .exists, .doesNotExist: return Spec(key: key, op: op, values: [])
        case .greaterThan, .lessThan: return Spec(key: key, op: op, values: [String(Int.random(in: 0...50, using: &random))])
        case .in, .notIn:
            let count = Int.random(in: 1...3, using: &random)
            let chosen = Set((0..<count).map { _ in pool.filter { !$0.isEmpty }.randomElement(using: &random)! })
            return Spec(key: key, op: op, values: chosen.sorted())
        default:
            return Spec(key: key, op: op, values: [pool.randomElement(using: &random)!])
        }
    }

    static func randomLabels(using random: inout SeededRandom) -> [String: String] {
        var labels: [String: String] = [:]
        for key in keys where Bool.random(using: &random) {
            labels[key] = Bool.random(using: &random)
                ? values.randomElement(using: &random)! : String(Int.random(in: -5...60, using: &random))
        }
        return labels
    }

    @Test("property: printed selectors parse back equal and match like the oracle")
    func propertyRoundTrip() throws {
        var random = SeededRandom(seed: 0x5E1E_C702)
        for _ in 0..<3_000 {
            let specs = (0..<Int.random(in: 0...4, using: &random)).map { _ in Self.randomSpec(using: &random) }
            let spelled = specs.map { $0.spelled(using: &random) }.joined(separator: " , ")
            let selector = try LabelSelector(parsing: spelled)
            let canonical = selector.description
            let reparsed = try LabelSelector(parsing: canonical)
            #expect(reparsed == selector, "\(spelled) → \(canonical)")
            #expect(reparsed.description == canonical)
            for _ in 0..<10 {
                let labels = Self.randomLabels(using: &random)
                let expected = specs.allSatisfy { $0.holds(labels) }
                #expect(selector.matches(labels) == expected, "\(spelled) on \(labels)")
                #expect(reparsed.matches(labels) == expected)
            }
        }
    }

    @Test("property: no input crashes the parser, and whatever parses round-trips")
    func propertyGarbage() throws {
        var random = SeededRandom(seed: 0x5E1E_C703)
        let alphabet = Array("ab=!(),<> in notin.-_/1 \t")
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...16, using: &random)
            let text = String((0..<length).map { _ in alphabet.randomElement(using: &random)! })
            if let selector = try? LabelSelector(parsing: text) {
                #expect(try LabelSelector(parsing: selector.description) == selector, "\(text)")
            }
        }
    }
}
