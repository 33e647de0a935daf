/// Federated averaging (McMahan et al., 2017) folded one update at a time.
///
/// Each accepted update is added to a running sum weighted by its `num_examples` the moment it arrives, so
/// memory stays O(model) however many clients answer, and the work of a round is spread over its arrivals
/// instead of piling up at the deadline. Sums are kept in double precision: the result is independent of
/// arrival order up to float32 rounding of the final division.
public struct StreamingFedAvg: Sendable {
    private let layout: ModelWeights
    private var sums: [[Double]]
    /// Total weight folded so far (the sum of `num_examples`).
    public private(set) var totalExamples: Double = 0
    /// Number of updates folded so far.
    public private(set) var count = 0

    /// Starts an empty average for models laid out like `layout`.
    public init(layout: ModelWeights) {
        self.layout = layout
        self.sums = layout.tensors.map { [Double](repeating: 0, count: $0.tensor.elementCount) }
    }

    /// Adds one client's weights, weighted by the number of examples it trained on.
    /// - Precondition: `weights` has the layout's names, shapes and dtypes (run `UpdateValidator` first) and
    ///   `numExamples > 0`.
    public mutating func fold(_ weights: ModelWeights, numExamples: Int) {
        precondition(numExamples > 0, "an update must carry a positive example count")
        precondition(weights.hasSameLayout(as: layout), "update layout differs from the base model")
        let weight = Double(numExamples)
        for index in sums.indices {
            let values = weights.tensors[index].tensor.floatValues
            sums[index].withUnsafeMutableBufferPointer { sum in
                values.withUnsafeBufferPointer { values in
                    StreamingFedAvg.accumulate(values, weight: weight, into: sum)
                }
            }
        }
        totalExamples += weight
        count += 1
    }

    /// sum[i] += weight × values[i]; a loop the optimiser vectorises.
    @inline(__always)
    static func accumulate(
        _ values: UnsafeBufferPointer<Float>, weight: Double, into sum: UnsafeMutableBufferPointer<Double>
    ) {
        guard let source = values.baseAddress, let target = sum.baseAddress else { return }
        for i in 0..<values.count {
            target[i] += weight * Double(source[i])
        }
    }

    /// The weighted average of everything folded so far, or nil if nothing was folded.
    public func average() -> ModelWeights? {
        guard count > 0 else { return nil }
        let scale = 1 / totalExamples
        return ModelWeights(
            zip(layout.tensors, sums).map { named, sum in
                NamedTensor(
                    name: named.name, tensor: Tensor(shape: named.tensor.shape, values: sum.map { Float($0 * scale) }))
            })
    }
}
