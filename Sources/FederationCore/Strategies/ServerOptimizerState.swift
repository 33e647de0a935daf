/// What a stateful strategy carries from one round to the next: its moment buffers and step count.
///
/// The state belongs to a model version: the state after the step that produced it. It is stored with that
/// version's checkpoint, so a restart resumes it and a rollback returns to the state of the version rolled back
/// to. Buffers are kept for floating-point tensors only, in `F32` (`F64` for `F64` tensors); integer and
/// boolean tensors take FedAvg's average and have no state.
public struct ServerOptimizerState: Sendable, Equatable {
    /// The strategy that built the state; another strategy starts afresh instead of reading it.
    public var strategy: StrategyName
    /// Optimizer steps taken: rounds aggregated since the state began.
    public var steps: Int
    /// m (FedAdam, FedYogi) or the momentum buffer (FedAvgM), by tensor name; empty for FedAdagrad, whose m
    /// is the step's own pseudo-gradient.
    public var firstMoment: ModelWeights
    /// v (FedAdam, FedYogi, FedAdagrad); empty for FedAvgM.
    public var secondMoment: ModelWeights
    /// The strategy with its parameters when the state was written (`AggregationStrategy.description`), so a
    /// coordinator restarted with other parameters can say so; nil in states written without it.
    public var parameters: String?

    public init(
        strategy: StrategyName, steps: Int, firstMoment: ModelWeights, secondMoment: ModelWeights,
        parameters: String? = nil
    ) {
        precondition(steps >= 0)
        self.parameters = parameters
        self.strategy = strategy
        self.steps = steps
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
    }

    /// Bytes of tensor data the state holds (its memory and, roughly, its size in the store).
    public var dataByteCount: Int { firstMoment.dataByteCount + secondMoment.dataByteCount }

    private static let format = "rondo-server-state-1"
    private static let firstPrefix = "first_moment/"
    private static let secondPrefix = "second_moment/"

    /// The state as a safetensors file: tensors `first_moment/NAME` and `second_moment/NAME`, with the
    /// strategy and step count in the metadata.
    public var file: SafeTensorsFile {
        SafeTensorsFile(
            weights: ModelWeights(
                firstMoment.tensors.map { NamedTensor(name: Self.firstPrefix + $0.name, tensor: $0.tensor) }
                    + secondMoment.tensors.map { NamedTensor(name: Self.secondPrefix + $0.name, tensor: $0.tensor) }),
            metadata: ["format": Self.format, "strategy": strategy.rawValue, "steps": String(steps)].merging(
                parameters.map { ["parameters": $0] } ?? [:]
            ) { first, _ in first })
    }

    /// Reads a state written by `file`.
    /// - Throws: `StrategyConfigurationError(.invalidValue)` when the file is not such a state.
    public init(file: SafeTensorsFile) throws(StrategyConfigurationError) {
        guard file.metadata["format"] == Self.format, let name = file.metadata["strategy"],
            let strategy = StrategyName(rawValue: name), let steps = file.metadata["steps"].flatMap({ Int($0) }),
            steps >= 0
        else { throw StrategyConfigurationError(.invalidValue, "not a Rondo server-optimizer state") }
        var first: [NamedTensor] = []
        var second: [NamedTensor] = []
        for named in file.weights.tensors {
            if named.name.hasPrefix(Self.firstPrefix) {
                first.append(
                    NamedTensor(name: String(named.name.dropFirst(Self.firstPrefix.count)), tensor: named.tensor))
            } else if named.name.hasPrefix(Self.secondPrefix) {
                second.append(
                    NamedTensor(name: String(named.name.dropFirst(Self.secondPrefix.count)), tensor: named.tensor))
            } else {
                throw StrategyConfigurationError(.invalidValue, "unexpected tensor \(named.name) in a server state")
            }
        }
        self.init(
            strategy: strategy, steps: steps, firstMoment: ModelWeights(first), secondMoment: ModelWeights(second),
            parameters: file.metadata["parameters"])
    }

    /// Whether the state can continue from `model` under `expected`: same strategy, and each buffer it keeps
    /// present with the right shape for each floating-point tensor (a model whose layout changed starts afresh).
    public func fits(_ model: ModelWeights, strategy expected: AggregationStrategy) -> Bool {
        guard strategy == expected.name else { return false }
        let (keepsFirst, keepsSecond) = expected.buffers
        for named in model.tensors where named.tensor.dtype.isFloatingPoint && named.tensor.dtype.isAggregated {
            if keepsFirst, firstMoment[named.name]?.shape != named.tensor.shape { return false }
            if keepsSecond, secondMoment[named.name]?.shape != named.tensor.shape { return false }
        }
        return true
    }
}
