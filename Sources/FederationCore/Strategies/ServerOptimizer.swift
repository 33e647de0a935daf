/// The server's step: turns a round's FedAvg average into the next global model under a strategy, updating
/// the strategy's state. Pure: the caller stores the result and the state together.
///
/// With x the current model, a the example-weighted average of the accepted results and Δ = a − x (the
/// pseudo-gradient, sign as in Reddi et al.), per element, in double precision:
/// - FedAvg: x' = a.
/// - FedAvgM: g = x − a; m = β·m + g (β = `server_momentum`; with β = 0 no buffer, m = g); x' = x − η·m
///   (η = `server_learning_rate`).
/// - FedAdam: m = β₁·m + (1−β₁)·Δ; v = β₂·v + (1−β₂)·Δ²; x' = x + η̂·m / (√v + τ), with Flower's bias-corrected
///   η̂ = η·√(1−β₂^(t+1)) / (1−β₁^(t+1)), t the step number counted from 1.
/// - FedYogi: m as FedAdam; v = v − (1−β₂)·Δ²·sign(v − Δ²); x' = x + η·m / (√v + τ).
/// - FedAdagrad: m = Δ; v = v + Δ²; x' = x + η·m / (√v + τ).
///
/// Buffers start at zero. Integer, boolean and 8-bit float tensors take the average unchanged. Memory: the
/// state is one (FedAvgM) or two (the adaptive ones) buffers the size of the model in `F32`, and a step holds
/// four double arrays the size of the largest tensor.
public enum ServerOptimizer {
    /// One step.
    /// - Parameters:
    ///   - base: the model the round trained from (x).
    ///   - average: the round's FedAvg average (a), laid out like `base`.
    ///   - state: the state `base` was produced with; nil (or one that does not `fit`) starts afresh.
    /// - Returns: the next model and the state to store with it (nil for a strategy without state).
    /// - Precondition: `average.hasSameLayout(as: base)`.
    /// - Throws: `NonFiniteStep` when a value of the next model is not finite in its dtype.
    public static func step(
        _ strategy: AggregationStrategy, base: ModelWeights, average: ModelWeights, state: ServerOptimizerState?
    ) throws(NonFiniteStep) -> (weights: ModelWeights, state: ServerOptimizerState?) {
        precondition(average.hasSameLayout(as: base), "the average's layout differs from the model's")
        // FedAvg, FedProx and the robust aggregators (whose `average` is already their aggregate) take no step.
        if strategy.name == .fedAvg || strategy.name == .fedProx || strategy.name.needsEveryUpdate {
            return (average, nil)
        }
        if strategy.name == .fedAvgM, !strategy.keepsServerState, strategy[.serverLearningRate] == 1 {
            return (average, nil)  // Flower's FedAvgM without server optimisation: FedAvg
        }
        let previous = state.flatMap { $0.fits(base, strategy: strategy) ? $0 : nil }
        let step = (previous?.steps ?? 0) + 1
        var weights: [NamedTensor] = []
        var first: [NamedTensor] = []
        var second: [NamedTensor] = []
        for (named, averaged) in zip(base.tensors, average.tensors) {
            let dtype = named.tensor.dtype
            guard dtype.isFloatingPoint, dtype.isAggregated else {
                weights.append(averaged)
                continue
            }
            var x = named.tensor.doubleValues
            let a = averaged.tensor.doubleValues
            var m = previous?.firstMoment[named.name]?.doubleValues ?? [Double](repeating: 0, count: x.count)
            var v = previous?.secondMoment[named.name]?.doubleValues ?? [Double](repeating: 0, count: x.count)
            update(strategy, step: step, x: &x, average: a, m: &m, v: &v)
            let stateType: TensorDType = dtype == .float64 ? .float64 : .float32
            let shape = named.tensor.shape
            let next = Tensor(shape: shape, dtype: dtype, converting: x)
            // Checked in the model's dtype: a finite double can still overflow F16 or BF16.
            guard TensorElements.allFinite(next) else { throw NonFiniteStep(tensor: named.name) }
            weights.append(NamedTensor(name: named.name, tensor: next))
            if strategy.buffers.first {
                first.append(
                    NamedTensor(name: named.name, tensor: Tensor(shape: shape, dtype: stateType, converting: m)))
            }
            if strategy.buffers.second {
                second.append(
                    NamedTensor(name: named.name, tensor: Tensor(shape: shape, dtype: stateType, converting: v)))
            }
        }
        let next =
            strategy.keepsServerState
            ? ServerOptimizerState(
                strategy: strategy.name, steps: step, firstMoment: ModelWeights(first),
                secondMoment: ModelWeights(second), parameters: strategy.description)
            : nil
        return (ModelWeights(weights), next)
    }

    /// The element-wise update of one tensor, in place.
    private static func update(
        _ strategy: AggregationStrategy, step: Int, x: inout [Double], average a: [Double],
        m: inout [Double], v: inout [Double]
    ) {
        switch strategy.name {
        case .fedAvg, .fedProx, .fedMedian, .fedTrimmedAvg, .krum:
            x = a
        case .fedAvgM:
            let (rate, momentum) = (strategy[.serverLearningRate], strategy[.serverMomentum])
            for i in x.indices {
                let gradient = x[i] - a[i]
                if momentum > 0 { m[i] = momentum * m[i] + gradient }  // m starts at 0: the first step's m is g
                x[i] -= rate * (momentum > 0 ? m[i] : gradient)
            }
        case .fedAdam:
            let (eta, beta1, beta2, tau) = (strategy[.eta], strategy[.beta1], strategy[.beta2], strategy[.tau])
            let stepSize = eta * (1 - power(beta2, step + 1)).squareRoot() / (1 - power(beta1, step + 1))
            for i in x.indices {
                let delta = a[i] - x[i]
                m[i] = beta1 * m[i] + (1 - beta1) * delta
                v[i] = beta2 * v[i] + (1 - beta2) * delta * delta
                x[i] += stepSize * m[i] / (v[i].squareRoot() + tau)
            }
        case .fedYogi:
            let (eta, beta1, beta2, tau) = (strategy[.eta], strategy[.beta1], strategy[.beta2], strategy[.tau])
            for i in x.indices {
                let delta = a[i] - x[i]
                let squared = delta * delta
                m[i] = beta1 * m[i] + (1 - beta1) * delta
                let difference = v[i] - squared
                let sign: Double = difference > 0 ? 1 : (difference < 0 ? -1 : 0)
                v[i] -= (1 - beta2) * squared * sign
                x[i] += eta * m[i] / (v[i].squareRoot() + tau)
            }
        case .fedAdagrad:
            let (eta, tau) = (strategy[.eta], strategy[.tau])
            for i in x.indices {
                let delta = a[i] - x[i]
                m[i] = delta
                v[i] += delta * delta
                x[i] += eta * m[i] / (v[i].squareRoot() + tau)
            }
        }
    }

    /// `base` to the power `exponent` (≥ 0) by repeated squaring: the core has no libm.
    static func power(_ base: Double, _ exponent: Int) -> Double {
        precondition(exponent >= 0)
        var (result, factor, remaining) = (1.0, base, exponent)
        while remaining > 0 {
            if remaining & 1 == 1 { result *= factor }
            factor *= factor
            remaining >>= 1
        }
        return result
    }
}

/// The server step made a value that is not finite (see `RoundFailure.Code.aggregationFailed`).
public struct NonFiniteStep: Error, Sendable, Equatable, CustomStringConvertible {
    /// The first tensor with such a value.
    public var tensor: String
    public var description: String { "the server step made tensor \(tensor) non-finite" }

    public init(tensor: String) { self.tensor = tensor }
}
