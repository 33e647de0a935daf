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

}
