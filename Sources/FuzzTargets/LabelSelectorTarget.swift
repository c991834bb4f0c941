import CustomMetricsAPI

extension FuzzTargets {
    /// `labelSelector` / `metricLabelSelector` and a metrics configuration's `selector`, as apimachinery parses
    /// them. A selector's canonical text parses back to the same selector, and matching never traps.
    static let labelSelector = FuzzTarget("label-selector", maxLength: 4096) { (raw) throws(FuzzFinding) in
        let text = String(decoding: raw, as: UTF8.self)
        guard let selector = try? LabelSelector(parsing: text) else { return }
        try checkCanonical(selector)
        // Label sets made of the selector's own keys and values, so that every operator is matched both ways.
        var labels: [String: String] = [:]
        for requirement in selector.requirements {
            labels[requirement.key] = requirement.values.first ?? ""
            _ = selector.matches(labels)
        }
        _ = selector.matches([:])
    }

    static func checkCanonical(_ selector: LabelSelector) throws(FuzzFinding) {
        let canonical = selector.description
        let again: LabelSelector
        do {
            again = try LabelSelector(parsing: canonical)
        } catch {
            throw FuzzFinding("the canonical selector \"\(excerpt(canonical))\" does not parse: \(error)")
        }
        try check(again == selector, "\"\(excerpt(canonical))\" parses to \"\(excerpt(again.description))\"")
    }
}
