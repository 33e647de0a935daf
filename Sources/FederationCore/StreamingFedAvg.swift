/// Federated averaging (McMahan et al., 2017) folded one update at a time.
///
/// Each accepted update is added to a running sum weighted by its `num_examples` the moment it arrives, so
/// memory stays O(model) however many clients answer, and the work of a round is spread over its arrivals
/// instead of piling up at the deadline. Sums are kept in double precision whatever the tensors' dtype (`F16`,
/// `BF16`, `F32`, `F64`, integers, `BOOL`), and each average is written back in its tensor's own dtype by the
/// rules of `TensorElements`: the result is independent of arrival order up to that final rounding.
///
/// With a `WeightCap`, no client holds more than the cap's share of the average. Only the heaviest updates can
/// be clipped, so the `clippedClientBound` heaviest so far are kept aside unfolded; an update is folded, at its
/// full weight, once enough heavier ones arrived that it can never be clipped, and `average()` adds the kept
/// ones at their clipped weights. Nothing is folded and taken back, so the result is exact whatever the
/// weights. Memory is then O(model × ⌈1/share⌉).
public struct StreamingFedAvg: Sendable {
    private let layout: ModelWeights
    private let weightCap: WeightCap?
    private var sums: [[Double]]
    /// Every folded update's weight, in arrival order (what the cap's level is computed from).
    private var weights: [Double] = []
    /// The heaviest updates so far, kept only under a weight cap: the only ones the cap can clip.
    private var heaviest: [(weight: Double, update: ModelWeights)] = []
    /// Weight already in `sums` (everything but the updates kept aside).
    private var foldedWeight: Double = 0
    /// Total weight folded so far (the sum of `num_examples`, before any cap).
    public private(set) var totalExamples: Double = 0
    /// Number of updates folded so far.
    public var count: Int { weights.count }

    /// Starts an empty average for models laid out like `layout`, optionally capping any client's share.
    public init(layout: ModelWeights, weightCap: WeightCap? = nil) {
        self.layout = layout
        self.weightCap = weightCap
        self.sums = layout.tensors.map { [Double](repeating: 0, count: $0.tensor.elementCount) }
    }

    /// Adds one client's weights, weighted by the number of examples it trained on.
    /// - Precondition: `weights` has the layout's names, shapes and dtypes (run `UpdateValidator` first) and
    ///   `numExamples > 0`.
    public mutating func fold(_ weights: ModelWeights, numExamples: Int) {
        precondition(numExamples > 0, "an update must carry a positive example count")
        precondition(weights.hasSameLayout(as: layout), "update layout differs from the base model")
        let weight = Double(numExamples)
        totalExamples += weight
        self.weights.append(weight)
        guard let weightCap else {
            Self.add(weights, weight: weight, into: &sums)
            foldedWeight += weight
            return
        }
        if heaviest.count < weightCap.clippedClientBound {
            heaviest.append((weight, weights))
        } else if let lightest = heaviest.indices.min(by: { heaviest[$0].weight < heaviest[$1].weight }),
            heaviest[lightest].weight < weight
        {
            // The evicted update has `clippedClientBound` heavier ones now: it can never be clipped.
            Self.add(heaviest[lightest].update, weight: heaviest[lightest].weight, into: &sums)
            foldedWeight += heaviest[lightest].weight
            heaviest[lightest] = (weight, weights)
        } else {
            Self.add(weights, weight: weight, into: &sums)
            foldedWeight += weight
        }
    }

    private static func add(_ weights: ModelWeights, weight: Double, into sums: inout [[Double]]) {
        for index in sums.indices {
            sums[index].withUnsafeMutableBufferPointer { sum in
                TensorElements.accumulate(weights.tensors[index].tensor, weight: weight, into: sum)
            }
        }
    }

    /// The weighted average of everything folded so far, or nil if nothing was folded.
    public func average() -> ModelWeights? {
        guard count > 0 else { return nil }
        var sums = sums
        var total = foldedWeight
        let level = weightCap?.level(for: weights) ?? .infinity
        for (weight, update) in heaviest {
            Self.add(update, weight: min(weight, level), into: &sums)
            total += min(weight, level)
        }
        let scale = 1 / total
        return ModelWeights(
            zip(layout.tensors, sums).map { named, sum in
                NamedTensor(
                    name: named.name,
                    tensor: TensorElements.tensor(
                        fromSums: sum, scale: scale, shape: named.tensor.shape, dtype: named.tensor.dtype))
            })
    }
}
