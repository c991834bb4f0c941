/// Parses Prometheus text exposition 0.0.4 and OpenMetrics 1.0.0 into the shared `MetricFamily` model.
///
/// The parser works on bytes, one line at a time, in a single pass: linear in the input, with hard limits
/// (`Limits`) on everything hostile input could inflate. It is the inverse of `ExpositionEncoder` for everything
/// the encoder writes: `parse(encode(families))` gives back the families (in the encoder's order), except what a
/// format cannot carry (the text format has no `info`, `# UNIT` or `_created`).
///
/// How wire names map onto the model:
/// - counters: the family is named without `_total` (`# TYPE x_total counter` in text, `# TYPE x counter` in
///   OpenMetrics); `x_total` samples get suffix `""`, `x_created` samples suffix `"_created"`. A text counter
///   whose TYPE name lacks `_total` (old exporters, Triton) keeps its name and its bare samples.
/// - text `x_created` gauges that follow a counter/histogram/summary `x` (what prometheus_client writes) are folded
///   into `x` as `_created` samples.
/// - OpenMetrics `info` `x` ← `x_info` samples; `stateset` becomes a gauge and `gaugehistogram` a histogram
///   (`_gsum`/`_gcount` → `_sum`/`_count`): the model has no kinds of their own for them.
/// - samples without metadata form an `unknown` family named after the sample.
/// - exemplars (OpenMetrics) are checked for syntax and dropped.
public enum ExpositionParser {
    /// Bounds on what one exposition may contain; exceeding any is a parse error, not a truncation.
    public struct Limits: Sendable, Equatable {
        /// Size of the whole exposition, checked before parsing starts.
        public var maxBytes: Int
        /// Samples in the whole exposition, across all families.
        public var maxSamples: Int
        /// Labels on one sample (an error, but not ``ExpositionParseError/overLimit``).
        public var maxLabelsPerSample: Int
        /// Bytes in one line, newline excluded.
        public var maxLineLength: Int
        /// Metric and label names (label *values* are bounded by `maxLineLength`).
        public var maxNameLength: Int

        /// Defaults: 16 MiB, a million samples, 64 labels, 1 MiB lines, 1 KiB names.
        public init(
            maxBytes: Int = 16 << 20, maxSamples: Int = 1_000_000, maxLabelsPerSample: Int = 64,
            maxLineLength: Int = 1 << 20, maxNameLength: Int = 1024
        ) {
            self.maxBytes = maxBytes
            self.maxSamples = maxSamples
            self.maxLabelsPerSample = maxLabelsPerSample
            self.maxLineLength = maxLineLength
            self.maxNameLength = maxNameLength
        }

        /// ``init(maxBytes:maxSamples:maxLabelsPerSample:maxLineLength:maxNameLength:)`` with its defaults.
        public static let `default` = Limits()
    }

    /// Parses an exposition held in contiguous memory.
    public static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, format: ExpositionFormat, limits: Limits = .default
    ) throws(ExpositionParseError) -> [MetricFamily] {
        var parser = ExpositionLineParser(bytes: bytes, format: format, limits: limits)
        return try parser.run()
    }

    /// Parses an exposition held in an array.
    public static func parse(
        _ bytes: [UInt8], format: ExpositionFormat, limits: Limits = .default
    ) throws(ExpositionParseError) -> [MetricFamily] {
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ExpositionParseError) in try parse(buffer, format: format, limits: limits) }
        }
        return try result.get()
    }

    /// Parses an exposition held in a string (its UTF-8 bytes).
    public static func parse(
        _ text: String, format: ExpositionFormat, limits: Limits = .default
    ) throws(ExpositionParseError) -> [MetricFamily] {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(ExpositionParseError) in try parse(buffer, format: format, limits: limits) }
        }
        return try result.get()
    }
}

/// Where and why an exposition was rejected. `line` and `column` are 1-based (column counts bytes).
public struct ExpositionParseError: Error, CustomStringConvertible, Sendable, Equatable {
    /// 1-based; 1 for a whole-input failure such as ``ExpositionParser/Limits/maxBytes``.
    public var line: Int
    /// 1-based, counted in bytes.
    public var column: Int
    public var message: String
    /// The exposition went over one of the ``ExpositionParser/Limits`` (size, samples, line length), rather than
    /// being malformed.
    public var overLimit: Bool

    /// Thrown by the parser.
    public init(line: Int, column: Int, message: String, overLimit: Bool = false) {
        self.line = line
        self.column = column
        self.message = message
        self.overLimit = overLimit
    }

    /// `line N: MESSAGE` (the column is left out).
    public var description: String { "line \(line): \(message)" }
}
