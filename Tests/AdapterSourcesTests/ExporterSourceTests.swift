import AccelMetricsTesting
import AdapterSources
import AdapterStore
import Logging
import Testing

/// The exporter source in process, against a real socket.
@Suite struct ExporterSourceTests {
    @Test func aScrapeCutShortByShutdownIsNotAnExporterFailure() async throws {
        // Accepts connections into its backlog and never answers: the scrape waits until it is cancelled.
        let silent = try LoopbackListener()
        defer { silent.close() }
        var settings = ScrapeSettings()
        settings.intervalSeconds = 3600
        settings.timeoutSeconds = 30
        let source = try ExporterSource(
            store: MetricStore(maxAgeSeconds: 60), catalog: MetricCatalog(MetricDefinition.builtIn), metrics: AdapterMetrics(),
            settings: settings, logger: Logger(label: "exporter-source-test"))
        let target = ExporterTarget(address: "127.0.0.1:\(silent.port)")
        source.setTargets([target])
        let scrape = Task { await source.scrapeOnce(target) }
        try await Task.sleep(for: .milliseconds(300))
        scrape.cancel()
        await scrape.value
        // Cancelled, not failed: the target keeps its unknown health and no error is recorded (or logged).
        let status = try #require(source.targetStatus.first)
        #expect(status.up == nil)
        #expect(status.lastError == nil)
        await source.shutdown()
    }
}
