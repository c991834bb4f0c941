import AccelMetricsTesting
@testable import AdapterStore
import Exposition

extension FakeNode {
    /// What the exporter source would store for this node after a scrape at `scrapeTime`.
    func targetData(target: String, catalog: MetricCatalog, scrapeTime: Double) throws -> TargetData {
        let families = try ExpositionParser.parse(exposition(), format: .text)
        return TargetData(
            target: target, parsed: families, keeping: catalog.families, scrapeTime: scrapeTime, fallbackNode: nil)
    }
}
