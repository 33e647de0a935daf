/// Checks a client's fit result against the round's base model before it may be aggregated.
///
/// A result must have exactly the base model's tensor names, shapes and dtypes, contain only finite values,
/// and — when `maxUpdateNorm` is set — move the model by at most that L2 distance. The check is the only
/// gate between a client and the global model, so it runs on every result.
///
/// Every dtype is checked by the same rules. The norm is taken over the floating-point tensors (computed in
/// double precision): integer and boolean tensors are buffers such as BatchNorm's `num_batches_tracked`, whose
/// counts would swamp the weights' distance, and they cannot be NaN.
public struct UpdateValidator: Sendable, Equatable {
    /// Largest accepted L2 norm of (result − base) over all tensors; nil accepts any. Default nil.
    public var maxUpdateNorm: Double?

    public init(maxUpdateNorm: Double? = nil) {
        precondition(maxUpdateNorm.map { $0 > 0 && $0.isFinite } ?? true, "max update norm must be positive")
        self.maxUpdateNorm = maxUpdateNorm
    }

    /// Validates `update` against `base`.
    /// - Returns: the L2 norm of the update (result − base).
    /// - Throws: `UpdateRejection` with reason `wrongNames`, `wrongShape`, `wrongDType`, `nonFinite` or `normTooLarge`.
    public func validate(_ update: ModelWeights, against base: ModelWeights) throws(UpdateRejection) -> Double {
        try Self.checkLayout(
            update.tensors.map { ($0.name, $0.tensor.dtype, $0.tensor.shape) }, against: base)
        var squaredNorm = 0.0
        for (candidate, reference) in zip(update.tensors, base.tensors) where candidate.tensor.dtype.isFloatingPoint {
            let (finite, squared) = TensorElements.squaredDistance(candidate.tensor, reference.tensor)
            guard finite else {
                throw UpdateRejection(.nonFinite, "tensor \"\(candidate.name)\" contains NaN or infinity")
            }
            squaredNorm += squared
        }
        return try checkNorm(squaredNorm: squaredNorm)
    }

    /// Validates a decoded fit result against the round's base model.
    /// - Throws: as `validate(_:against:)`.
    public func check(_ result: FitResult, against base: GlobalModel) throws(UpdateRejection) -> CheckedUpdate {
        let norm = try validate(result.weights, against: base.weights)
        return CheckedUpdate(
            baseVersion: base.version, numExamples: result.numExamples, metrics: result.metrics, norm: norm,
            payload: result.weights)
    }

    /// The norm for a sum of squared differences, refused above `maxUpdateNorm`, and refused as `nonFinite`
    /// when it overflows (finite F64 values far apart square to infinity): no infinite norm reaches clipping.
    func checkNorm(squaredNorm: Double) throws(UpdateRejection) -> Double {
        guard squaredNorm.isFinite else {
            throw UpdateRejection(.nonFinite, "the update's L2 norm overflows a double")
        }
        let norm = squaredNorm.squareRoot()
        if let maxUpdateNorm, norm > maxUpdateNorm {
            throw UpdateRejection(.normTooLarge, "update L2 norm \(norm) exceeds the limit \(maxUpdateNorm)")
        }
        return norm
    }

    /// Checks declared tensors (sorted by name) against the base model's names, dtypes and shapes.
    static func checkLayout(_ tensors: [(name: String, dtype: TensorDType, shape: [Int])], against base: ModelWeights)
        throws(UpdateRejection)
    {
        let names = tensors.map(\.name)
        let baseNames = base.names
        guard names == baseNames else {
            let missing = Set(baseNames).subtracting(names).sorted()
            let extra = Set(names).subtracting(baseNames).sorted()
            throw UpdateRejection(
                .wrongNames, "tensor names differ from the base model: missing \(missing), unexpected \(extra)")
        }
        for (candidate, reference) in zip(tensors, base.tensors) {
            guard candidate.dtype == reference.tensor.dtype else {
                throw UpdateRejection(
                    .wrongDType,
                    "tensor \"\(candidate.name)\" is \(candidate.dtype.rawValue), expected \(reference.tensor.dtype.rawValue)"
                )
            }
            guard candidate.shape == reference.tensor.shape else {
                throw UpdateRejection(
                    .wrongShape,
                    "tensor \"\(candidate.name)\" has shape \(candidate.shape), expected \(reference.tensor.shape)")
            }
        }
    }
}
