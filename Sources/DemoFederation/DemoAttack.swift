import FederationCore
import Foundation

/// How the demo's malicious sites corrupt their updates (`rondo demo --malicious-rate R --attack NAME`), to
/// see what each aggregation strategy withstands. Each attack starts from the site's honestly trained update
/// Δ = trained − model.
public enum DemoAttack: String, Sendable, CaseIterable {
    /// Sends model − 10·Δ: the honest step reversed and magnified.
    case signFlip = "sign-flip"
    /// Sends model + noise, Gaussian with a norm of 10·‖Δ‖.
    case gaussianNoise = "gaussian-noise"
    /// "A little is enough" (Baruch, Baruch and Goldberg, NeurIPS 2019): the malicious sites pool their honest
    /// updates and each sends μ − z·σ per coordinate (mean and standard deviation of the pool), with
    /// z = Φ⁻¹((n − s)/n), s = ⌊n/2 + 1⌋ − f for n sites of which f are malicious: small enough to pass for
    /// honest, consistent enough to pull every coordinate the same way.
    case littleIsEnough = "little-is-enough"

    /// The corrupted update.
    /// - Parameters:
    ///   - pooled: for `littleIsEnough`, the honest updates of every malicious site this round (its own
    ///     among them).
    ///   - sites: n; `malicious`: f.
    public func corrupt(
        model: ModelWeights, trained: ModelWeights, pooled: [ModelWeights], sites: Int, malicious: Int,
        using generator: inout some RandomNumberGenerator
    ) -> ModelWeights {
        switch self {
        case .signFlip:
            return Self.map(model, trained) { base, value in base - 10 * (value - base) }
        case .gaussianNoise:
            var squared = 0.0
            var count = 0
            for (base, value) in zip(model.tensors, trained.tensors) where base.tensor.dtype.isFloatingPoint {
                for (x, y) in zip(base.tensor.doubleValues, value.tensor.doubleValues) { squared += (y - x) * (y - x) }
                count += base.tensor.elementCount
            }
            // Per-element σ so that the noise's expected norm is 10·‖Δ‖.
            let sigma = 10 * squared.squareRoot() / Double(max(count, 1)).squareRoot()
            return Self.map(model, trained) { base, _ in base + sigma * Self.normal(using: &generator) }
        case .littleIsEnough:
            let z = Self.inverseNormal(Double(sites - (sites / 2 + 1 - malicious)) / Double(sites))
            var tensors: [NamedTensor] = []
            for (index, named) in trained.tensors.enumerated() {
                guard named.tensor.dtype.isFloatingPoint else {
                    tensors.append(named)
                    continue
                }
                let columns = pooled.map { $0.tensors[index].tensor.doubleValues }
                let values = (0..<named.tensor.elementCount).map { i -> Double in
                    let mean = columns.reduce(0.0) { $0 + $1[i] } / Double(columns.count)
                    let variance = columns.reduce(0.0) { $0 + ($1[i] - mean) * ($1[i] - mean) } / Double(columns.count)
                    return mean - z * variance.squareRoot()
                }
                tensors.append(
                    NamedTensor(
                        name: named.name,
                        tensor: Tensor(shape: named.tensor.shape, dtype: named.tensor.dtype, converting: values)))
            }
            return ModelWeights(tensors)
        }
    }

    /// Applies `transform(base, trained)` to every floating-point element.
    static func map(_ model: ModelWeights, _ trained: ModelWeights, _ transform: (Double, Double) -> Double)
        -> ModelWeights
    {
        ModelWeights(
            zip(model.tensors, trained.tensors).map { base, value in
                guard base.tensor.dtype.isFloatingPoint else { return value }
                let values = zip(base.tensor.doubleValues, value.tensor.doubleValues).map(transform)
                return NamedTensor(
                    name: value.name,
                    tensor: Tensor(shape: value.tensor.shape, dtype: value.tensor.dtype, converting: values))
            })
    }

    /// A standard normal draw (Box–Muller).
    static func normal(using generator: inout some RandomNumberGenerator) -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &generator)
        let v = Double.random(in: 0..<1, using: &generator)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }

    /// Φ⁻¹(p), by bisection on Φ(z) = erfc(−z/√2)/2.
    static func inverseNormal(_ p: Double) -> Double {
        var (low, high) = (-10.0, 10.0)
        for _ in 0..<100 {
            let middle = (low + high) / 2
            if 0.5 * erfc(-middle / 2.squareRoot()) < p { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }
}
