/// A strategy with its parameters: what turns a round's FedAvg average into the next global model.
///
/// Invariant: `parameters` holds exactly the parameters `name` takes, each within its accepted range (defaults
/// filled in), so the record of a checkpoint names every value that produced it.
public struct AggregationStrategy: Sendable, Equatable, CustomStringConvertible {
    public let name: StrategyName
    public let parameters: [StrategyParameter: Double]

    /// Plain FedAvg, the default.
    public static let fedAvg = AggregationStrategy(checked: .fedAvg, parameters: [:])

    private init(checked name: StrategyName, parameters: [StrategyParameter: Double]) {
        self.name = name
        self.parameters = parameters
    }

    /// A strategy from its name and `NAME=VALUE` options as an operator gives them; parameters not given take
    /// their defaults.
    /// - Throws: `StrategyConfigurationError` for an unknown strategy, a parameter it does not take, a value
    ///   that is not a finite number, or one out of range.
    public init(name rawName: String, options: [String: String] = [:]) throws(StrategyConfigurationError) {
        guard let name = StrategyName(rawValue: rawName.lowercased()) else {
            throw StrategyConfigurationError(
                .unknownStrategy,
                "unknown strategy \"\(rawName)\"; one of \(StrategyName.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let specs = name.parameters
        var values = specs.mapValues(\.default)
        for (key, text) in options {
            guard let parameter = StrategyParameter(rawValue: key), let spec = specs[parameter] else {
                let known = specs.keys.sorted().map(\.rawValue).joined(separator: ", ")
                throw StrategyConfigurationError(
                    .unknownParameter,
                    "\(name.rawValue) takes no parameter \"\(key)\"" + (known.isEmpty ? "" : "; it takes \(known)"))
            }
            guard let value = Double(text), value.isFinite else {
                throw StrategyConfigurationError(.invalidValue, "\(key)=\(text) is not a finite number")
            }
            guard !spec.integral || value == value.rounded() else {
                throw StrategyConfigurationError(.invalidValue, "\(key)=\(text) must be a whole number")
            }
            guard spec.range.contains(value) else {
                throw StrategyConfigurationError(
                    .invalidValue, "\(key)=\(text) is outside \(spec.range.lowerBound)...\(spec.range.upperBound)")
            }
            values[parameter] = value
        }
        for (parameter, spec) in specs where spec.required && options[parameter.rawValue] == nil {
            throw StrategyConfigurationError(
                .missingParameter, "\(name.rawValue) needs --strategy-option \(parameter.rawValue)=VALUE")
        }
        self.init(checked: name, parameters: values)
    }

    /// The value of a parameter the strategy takes.
    /// - Precondition: `name` takes `parameter`.
    public subscript(_ parameter: StrategyParameter) -> Double {
        guard let value = parameters[parameter] else {
            preconditionFailure("\(name.rawValue) takes no parameter \(parameter.rawValue)")
        }
        return value
    }

    /// Whether the strategy keeps state between rounds (moment buffers) that must be stored with each model.
    public var keepsServerState: Bool { buffers.first || buffers.second }

    /// What the strategy adds to every fit task's config (Flower's `configure_fit`): FedProx's `proximal_mu`.
    public var fitConfig: [String: String] {
        name == .fedProx ? [StrategyParameter.proximalMu.rawValue: String(self[.proximalMu])] : [:]
    }

    /// The buffers its state keeps: the first moment (or momentum) and the second moment.
    public var buffers: (first: Bool, second: Bool) {
        switch name {
        case .fedAvg: (false, false)
        case .fedAvgM: (self[.serverMomentum] > 0, false)
        case .fedAdam, .fedYogi: (true, true)
        case .fedAdagrad: (false, true)
        case .fedProx, .fedMedian, .fedTrimmedAvg, .krum: (false, false)
        }
    }

    /// `fedadam(beta_1=0.9, beta_2=0.99, eta=0.1, tau=1e-09)`: the name and every parameter, sorted.
    public var description: String {
        guard !parameters.isEmpty else { return name.rawValue }
        let list = parameters.keys.sorted().map { "\($0.rawValue)=\(parameters[$0]!)" }.joined(separator: ", ")
        return "\(name.rawValue)(\(list))"
    }

    /// The parameters by their names, for JSON records and views.
    public var namedParameters: [String: Double] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.key.rawValue, $0.value) })
    }
}
