/// Deterministic sample order within one family.
///
/// Scrapers do not need sorted output, but diffs, golden files and caches do; and OpenMetrics *does* require
/// every series' samples (all buckets, `_count`, `_sum`, `_created`) to be contiguous. Sorting indices, not
/// samples, leaves the caller's families untouched and moves 8-byte integers instead of structs.
struct SampleOrder {
    /// The label that varies *within* one histogram/summary series and so is left out of the grouping key.
    private let boundLabel: String?
    private let kind: MetricFamily.Kind

    init(kind: MetricFamily.Kind) {
        self.kind = kind
        switch kind {
        case .histogram: boundLabel = "le"
        case .summary: boundLabel = "quantile"
        default: boundLabel = nil
        }
    }

    /// Fills `order` with the render order of `samples`; `bounds` is scratch space reused across families.
    ///
    /// Series are ordered by their labels (name, then value, pair by pair, in the order given); within a series
    /// by suffix (buckets or quantiles, `_count`, `_sum`, `_created`), buckets by numeric bound with `+Inf`
    /// last. Swift's sort is stable, so exact duplicates keep their input order.
    func sort(_ samples: [Sample], into order: inout [Int], bounds: inout [Double]) {
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: samples.indices)
        bounds.removeAll(keepingCapacity: true)
        if let boundLabel {
            // Parse each bound once, not once per comparison. A missing or unparsable bound sorts as NaN, which
            // compares neither way and so keeps input order; the debug assertions in the encoder catch it.
            for sample in samples {
                let text = sample.labels.first { $0.name == boundLabel }?.value
                bounds.append(text.flatMap { Double($0) } ?? .nan)
            }
        }
        order.sort { lhs, rhs in
            let a = samples[lhs], b = samples[rhs]
            switch compareLabels(a.labels, b.labels) {
            case .less: return true
            case .greater: return false
            case .equal: break
            }
            let rankA = suffixRank(a.suffix), rankB = suffixRank(b.suffix)
            if rankA != rankB { return rankA < rankB }
            return boundLabel != nil && rankA == 0 && bounds[lhs] < bounds[rhs]
        }
    }

    private enum Ordering { case less, equal, greater }

    /// Compares two label lists pair by pair, skipping the bound label; a prefix sorts first.
    private func compareLabels(_ a: [Label], _ b: [Label]) -> Ordering {
        var i = a.startIndex, j = b.startIndex
        while true {
            while i < a.endIndex, a[i].name == boundLabel { i += 1 }
            while j < b.endIndex, b[j].name == boundLabel { j += 1 }
            switch (i < a.endIndex, j < b.endIndex) {
            case (false, false): return .equal
            case (false, true): return .less
            case (true, false): return .greater
            case (true, true): break
            }
            if a[i].name != b[j].name { return a[i].name < b[j].name ? .less : .greater }
            if a[i].value != b[j].value { return a[i].value < b[j].value ? .less : .greater }
            i += 1
            j += 1
        }
    }

    /// Position of a suffix inside one series: the bound-carrying samples first, then `_count`, `_sum`, `_created`.
    private func suffixRank(_ suffix: String) -> Int {
        switch suffix {
        case "_bucket" where kind == .histogram: 0
        case "": 0
        case "_count": 1
        case "_sum": 2
        case "_created": 3
        default: 4
        }
    }
}
