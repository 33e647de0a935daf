import FederationClient
import FederationCore
import Foundation

/// Multinomial logistic regression on the digits features: `logits = W·x + b`, trained by mini-batch SGD on
/// cross-entropy. Parameters travel as two tensors, `weight` [classes, features] and `bias` [classes], the
/// names PyTorch's `nn.Linear` uses.
public struct SoftmaxRegression: Sendable {
    public static let classes = DigitsDataset.classCount
    public static let features = DigitsDataset.featureCount

    public var weight: [Float]
    public var bias: [Float]

    /// A model with all parameters zero (a fine start: the loss is convex).
    public init() {
        weight = [Float](repeating: 0, count: Self.classes * Self.features)
        bias = [Float](repeating: 0, count: Self.classes)
    }

    /// Reads `weight` and `bias` from model weights.
    public init(weights: ModelWeights) throws {
        guard let weight = weights["weight"], weight.shape == [Self.classes, Self.features],
            let bias = weights["bias"], bias.shape == [Self.classes]
        else { throw DatasetError(message: "model is not a [10, 64] softmax regression") }
        self.weight = weight.floatValues
        self.bias = bias.floatValues
    }

    public var weights: ModelWeights {
        ModelWeights([
            "weight": Tensor(shape: [Self.classes, Self.features], values: weight),
            "bias": Tensor(shape: [Self.classes], values: bias),
        ])
    }

    /// Class probabilities for example `index` of `data`, written into `probabilities`.
    func predict(_ data: DigitsDataset, _ index: Int, into probabilities: inout [Float]) {
        let offset = index * Self.features
        var largest = -Float.infinity
        for k in 0..<Self.classes {
            var z = bias[k]
            let row = k * Self.features
            for j in 0..<Self.features { z += weight[row + j] * data.features[offset + j] }
            probabilities[k] = z
            largest = max(largest, z)
        }
        var total: Float = 0
        for k in 0..<Self.classes {
            probabilities[k] = exp(probabilities[k] - largest)
            total += probabilities[k]
        }
        for k in 0..<Self.classes { probabilities[k] /= total }
    }

    /// Runs `epochs` passes of mini-batch SGD over `data` in an order drawn from `generator`.
    /// - Parameter proximal: FedProx's term (`--strategy fedprox`): μ·(w − w_global) joins every step's gradient.
    public mutating func train(
        on data: DigitsDataset, epochs: Int, learningRate: Float, batchSize: Int,
        using generator: inout SeededRandomNumberGenerator, proximal: ProximalTerm? = nil
    ) {
        var order = Array(0..<data.count)
        var probabilities = [Float](repeating: 0, count: Self.classes)
        var weightGradient = [Float](repeating: 0, count: weight.count)
        var biasGradient = [Float](repeating: 0, count: bias.count)
        for _ in 0..<epochs {
            order.shuffle(using: &generator)
            var start = 0
            while start < order.count {
                let batch = order[start..<min(start + batchSize, order.count)]
                for index in weightGradient.indices { weightGradient[index] = 0 }
                for index in biasGradient.indices { biasGradient[index] = 0 }
                for example in batch {
                    predict(data, example, into: &probabilities)
                    probabilities[data.labels[example]] -= 1  // dLoss/dlogits = p − onehot
                    let offset = example * Self.features
                    for k in 0..<Self.classes {
                        let g = probabilities[k]
                        biasGradient[k] += g
                        let row = k * Self.features
                        for j in 0..<Self.features { weightGradient[row + j] += g * data.features[offset + j] }
                    }
                }
                if let proximal {
                    // The gradient of the mean loss plus μ·(w − w_global).
                    let mean = 1 / Float(batch.count)
                    for index in weightGradient.indices { weightGradient[index] *= mean }
                    for index in biasGradient.indices { biasGradient[index] *= mean }
                    proximal.addGradient(of: "weight", weights: weight, to: &weightGradient)
                    proximal.addGradient(of: "bias", weights: bias, to: &biasGradient)
                    for index in weight.indices { weight[index] -= learningRate * weightGradient[index] }
                    for index in bias.indices { bias[index] -= learningRate * biasGradient[index] }
                } else {
                    let step = learningRate / Float(batch.count)
                    for index in weight.indices { weight[index] -= step * weightGradient[index] }
                    for index in bias.indices { bias[index] -= step * biasGradient[index] }
                }
                start += batchSize
            }
        }
    }

    /// Mean cross-entropy and accuracy on `data`.
    public func evaluate(on data: DigitsDataset) -> (loss: Double, accuracy: Double) {
        var probabilities = [Float](repeating: 0, count: Self.classes)
        var loss = 0.0
        var correct = 0
        for example in 0..<data.count {
            predict(data, example, into: &probabilities)
            let label = data.labels[example]
            loss -= Double(log(max(probabilities[label], 1e-12)))
            if probabilities.indices.max(by: { probabilities[$0] < probabilities[$1] }) == label { correct += 1 }
        }
        return (loss / Double(max(data.count, 1)), Double(correct) / Double(max(data.count, 1)))
    }
}
