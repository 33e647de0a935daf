import FederationCore
import ModelManager

/// An aggregation strategy as the API shows it: `{"name": "fedadam", "parameters": {"eta": 0.1, …}}`.
public struct StrategyView: Codable, Sendable, Equatable {
    /// The strategy's name (`fedavg`, `fedavgm`, `fedadam`, `fedyogi`, `fedadagrad`).
    public var name: String
    /// Every parameter it runs with, defaults included, by Flower's keyword.
    public var parameters: [String: Double]
    /// A checkpoint's differential privacy: what its round ran with and the ε spent once it was made; absent
    /// otherwise.
    public var privacy: PrivacyRecord?

    public init(name: String, parameters: [String: Double], privacy: PrivacyRecord? = nil) {
        self.name = name
        self.parameters = parameters
        self.privacy = privacy
    }

    public init(_ strategy: AggregationStrategy) {
        self.init(name: strategy.name.rawValue, parameters: strategy.namedParameters)
    }
}
