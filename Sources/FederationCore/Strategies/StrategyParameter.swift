/// A named parameter of an aggregation strategy (`--strategy-option NAME=VALUE`); the raw value is Flower's
/// keyword for it.
public enum StrategyParameter: String, Sendable, CaseIterable, Codable, Hashable, Comparable {
    /// FedAvgM: the server's step size along the (momentum) pseudo-gradient. 1 with no momentum is FedAvg.
    case serverLearningRate = "server_learning_rate"
    /// FedAvgM: the momentum factor β of the heavy-ball buffer; 0 turns momentum off.
    case serverMomentum = "server_momentum"
    /// FedAdam, FedYogi, FedAdagrad: the server learning rate η.
    case eta
    /// FedAdam, FedYogi: the first-moment decay β₁.
    case beta1 = "beta_1"
    /// FedAdam, FedYogi: the second-moment decay β₂.
    case beta2 = "beta_2"
    /// FedAdam, FedYogi, FedAdagrad: the adaptivity τ added to √v (keeps the step finite where v is 0).
    case tau

    /// A parameter's default and the values it accepts.
    public struct Spec: Sendable, Equatable {
        public var `default`: Double
        public var range: ClosedRange<Double>

        public init(default: Double, range: ClosedRange<Double>) {
            precondition(range.contains(`default`))
            self.default = `default`
            self.range = range
        }
    }

    public static func < (lhs: StrategyParameter, rhs: StrategyParameter) -> Bool { lhs.rawValue < rhs.rawValue }
}
