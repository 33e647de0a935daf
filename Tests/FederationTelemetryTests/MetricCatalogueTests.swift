import CoreMetrics
import FederationTelemetry
import Testing

@Suite struct MetricCatalogueTests {
    @Test func namesAreUniqueAndConventional() {
        let names = MetricCatalogue.all.map(\.name)
        #expect(Set(names).count == names.count)
        for definition in MetricCatalogue.all {
            #expect(definition.name.hasPrefix("rondo_") || definition.name.hasPrefix("process_"), "\(definition.name)")
            #expect(!definition.help.isEmpty, "\(definition.name) has help text")
            switch definition.kind {
            case .counter: #expect(definition.name.hasSuffix("_total"), "\(definition.name)")
            case .histogram:
                #expect(
                    !definition.buckets.isEmpty && definition.buckets == definition.buckets.sorted(),
                    "\(definition.name)")
            case .gauge: #expect(!definition.name.hasSuffix("_total"), "\(definition.name)")
            }
            for label in definition.labels {
                #expect(!["client", "client_id", "round", "version_number", "task_id"].contains(label.name))
            }
        }
    }

    @Test func renderedFamiliesCarryHelpAndTypeAndPreCreatedSeries() {
        let factory = CatalogueMetricsFactory()
        let metrics = CoordinatorMetrics(factory: factory, version: "1.2.3", revision: "abc")
        metrics.dropout(kind: .fit, reason: .timeout)
        let text = String(decoding: factory.render(), as: UTF8.self)
        #expect(text.contains(#"rondo_build_info{version="1.2.3",revision="abc"} 1"#))
        #expect(
            text.contains("# HELP rondo_dropouts_total Selected clients that gave no result, by task kind and reason."))
        #expect(text.contains("# TYPE rondo_dropouts_total counter"))
        #expect(text.contains(#"rondo_dropouts_total{kind="fit",reason="timeout"} 1"#))
        // Every combination of bounded labels exists before its first event.
        #expect(text.contains(#"rondo_dropouts_total{kind="evaluate",reason="error"} 0"#))
        #expect(text.contains(#"rondo_round_phase{phase="committing"} 0"#))
    }
}
