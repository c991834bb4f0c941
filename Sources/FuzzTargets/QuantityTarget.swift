import CustomMetricsAPI

extension FuzzTargets {
    /// Kubernetes quantities as `resource.ParseQuantity` reads them (an HPA's target values, JSON bodies), and the
    /// adapter's own from a Double (every value it serves).
    ///
    /// A quantity's canonical text parses back to the same value and, after at most one change of format, prints
    /// the same; the integer views saturate
    /// rather than trap; a finite Double's quantity round-trips through its text and is the Double to nano precision. The input's first eight bytes are
    /// also read as a Double.
    static let quantity = FuzzTarget("quantity", maxLength: 1024) { (raw) throws(FuzzFinding) in
        let text = String(decoding: raw, as: UTF8.self)
        if let parsed = try? Quantity(parsing: text) {
            try checkCanonical(parsed, from: text)
            _ = (parsed.milliValue, parsed.integerValue, parsed.doubleValue, parsed.signum, parsed.isZero)
            _ = parsed.roundedUp(toExponent: -3)
            for exponent in [-9, -3, 0, 3, 18] { _ = parsed.scaledValue(exponent: exponent) }
        }
        if raw.count >= 8 {
            var bits: UInt64 = 0
            for byte in raw.prefix(8) { bits = bits << 8 | UInt64(byte) }
            let value = Double(bitPattern: bits)
            if let quantity = Quantity(value) {
                try check(value.isFinite, "\(value) became the quantity \(quantity)")
                try checkCanonical(quantity, from: "\(value)")
                // Kept to nano precision, rounded away from zero: never zero unless the value is.
                try check(quantity.isZero == (value == 0), "\(value) became \(quantity)")
                try check(abs(quantity.doubleValue - value) <= 1.000001e-9,
                          "\(value) became \(quantity), which reads back as \(quantity.doubleValue)")
            } else {
                try check(!value.isFinite, "the finite \(value) has no quantity")
            }
        }
    }

    static func checkCanonical(_ quantity: Quantity, from input: String) throws(FuzzFinding) {
        let canonical = quantity.description
        let again: Quantity
        do {
            again = try Quantity(parsing: canonical)
        } catch {
            throw FuzzFinding("\"\(excerpt(input))\": the canonical \"\(excerpt(canonical))\" does not parse: \(error)")
        }
        try check(again == quantity, "\"\(excerpt(input))\": the canonical \"\(excerpt(canonical))\" parses to another value")
        // The text may change once: a BinarySI value that is no whole number of Ki prints as plain digits, which parse
        // as DecimalSI (apimachinery does the same: 312.5Ki → "320000" → "320k"). From there it is a fixed point.
        let settled = again.description
        try check(
            (try? Quantity(parsing: settled))?.description == settled,
            "\"\(excerpt(input))\": \"\(excerpt(canonical))\" → \"\(excerpt(settled))\" is not a fixed point")
    }
}
