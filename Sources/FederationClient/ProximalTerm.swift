import FederationCore

/// FedProx's proximal term for a local trainer (Li et al., MLSys 2020): under `rondo serve --strategy fedprox`
/// every fit task carries `proximal_mu`, and a trainer adds (μ/2)·‖w − w_global‖² to its loss, that is
/// μ·(w − w_global) to each gradient, so a site's model cannot drift far from the global one in one round.
///
/// Build it from the task and the model the task was handed; apply it at every local step.
public struct ProximalTerm: Sendable {
    /// μ, from the task's `proximal_mu`.
    public let mu: Double
    /// The global model the task started from, as F32 values by tensor name.
    private let global: [String: [Float]]

    /// The term for a fit task; nil when the task carries no `proximal_mu` (or 0, or a value that is not a
    /// finite positive number): then there is nothing to add.
    public init?(task: TaskContext, global model: ModelWeights) {
        guard let text = task.config["proximal_mu"], let mu = Double(text), mu.isFinite, mu > 0 else { return nil }
        self.mu = mu
        var values: [String: [Float]] = [:]
        for named in model.tensors where named.tensor.dtype.isFloatingPoint {
            values[named.name] = named.tensor.floatValues
        }
        self.global = values
    }

    /// Adds μ·(w − w_global) to `gradient` for tensor `name` (a gradient of the mean loss over the batch).
    /// - Precondition: `weights` and `gradient` have the tensor's element count.
    public func addGradient(of name: String, weights: [Float], to gradient: inout [Float]) {
        guard let anchor = global[name] else { return }
        precondition(anchor.count == weights.count && gradient.count == weights.count, "tensor \(name) changed size")
        let scale = Float(mu)
        for index in gradient.indices { gradient[index] += scale * (weights[index] - anchor[index]) }
    }

    /// (μ/2)·‖w − w_global‖² over the floating-point tensors of `weights`: what the term adds to the loss.
    public func penalty(_ weights: ModelWeights) -> Double {
        var squared = 0.0
        for named in weights.tensors {
            guard let anchor = global[named.name] else { continue }
            for (value, start) in zip(named.tensor.floatValues, anchor) {
                let difference = Double(value) - Double(start)
                squared += difference * difference
            }
        }
        return mu / 2 * squared
    }
}
