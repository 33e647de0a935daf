import FederationCore
import FederationTelemetry
import Testing

@testable import Coordinator

@Suite struct CoordinatorMetricsTests {
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

    /// The catalogue declares each bounded label's values; the coordinator's vocabulary types are what
    /// emitters pass, so the two must list the same words.
    @Test func labelValueSetsAreTheVocabularyTypes() {
        func values(_ definition: MetricCatalogue.Definition, _ label: String) -> Set<String> {
            Set(definition.labels.first { $0.name == label }?.values ?? [])
        }
        #expect(values(MetricCatalogue.limitRefusals, "limit") == Set(Limit.allCases.map(\.rawValue)))
        #expect(values(MetricCatalogue.authRefusals, "reason") == Set(AuthRefusal.labels))
        #expect(values(MetricCatalogue.adminActions, "action") == Set(OperatorAction.allCases.map(\.rawValue)))
        #expect(values(MetricCatalogue.phase, "phase") == Set(RoundPhase.allCases.map(\.rawValue)))
    }
}
