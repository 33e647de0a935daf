import FederationTelemetry

extension CatalogueMetricsFactory {
    /// The value of an unlabelled counter or gauge in the rendered exposition, if present.
    public func sampleValue(_ name: String) -> Int? {
        String(decoding: render(), as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
    }
}
