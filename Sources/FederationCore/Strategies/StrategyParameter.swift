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
    /// FedProx: the weight μ of the proximal term (μ/2)·‖w − w_global‖² clients add to their loss (required).
    case proximalMu = "proximal_mu"
    /// FedTrimmedAvg: the share β of results cut from each end of every coordinate, in [0, 0.5).
    case beta
    /// Krum: the number f of malicious clients it tolerates; each result is scored over its n − f − 2 nearest.
    case numMaliciousClients = "num_malicious_clients"
    /// Krum: 0 keeps the single best-scored result (Krum); m > 0 averages the m best (Multi-Krum).
    case numClientsToKeep = "num_clients_to_keep"

    /// A parameter's default and the values it accepts.
    public struct Spec: Sendable, Equatable {
        public var `default`: Double
        public var range: ClosedRange<Double>
        /// Whether only whole numbers are accepted (client counts).
        public var integral: Bool
        /// Whether the operator must give it (Flower's strategy has no default for it either).
        public var required: Bool

        public init(default: Double, range: ClosedRange<Double>, integral: Bool = false, required: Bool = false) {
            precondition(range.contains(`default`))
            self.default = `default`
            self.range = range
            self.integral = integral
            self.required = required
        }
    }

    public static func < (lhs: StrategyParameter, rhs: StrategyParameter) -> Bool { lhs.rawValue < rhs.rawValue }
}
