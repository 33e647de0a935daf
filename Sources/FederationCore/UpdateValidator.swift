/// Checks a client's fit result against the round's base model before it may be aggregated.
///
/// A result must have exactly the base model's tensor names, shapes and dtypes, contain only finite values,
/// and — when `maxUpdateNorm` is set — move the model by at most that L2 distance. The check is the only
/// gate between a client and the global model, so it runs on every result.
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
        let names = update.names
        let baseNames = base.names
        guard names == baseNames else {
            let missing = Set(baseNames).subtracting(names).sorted()
            let extra = Set(names).subtracting(baseNames).sorted()
            throw UpdateRejection(
                .wrongNames, "tensor names differ from the base model: missing \(missing), unexpected \(extra)")
        }
        var squaredNorm = 0.0
        for (candidate, reference) in zip(update.tensors, base.tensors) {
            guard candidate.tensor.dtype == reference.tensor.dtype else {
                throw UpdateRejection(
                    .wrongDType,
                    "tensor \"\(candidate.name)\" is \(candidate.tensor.dtype.rawValue), expected \(reference.tensor.dtype.rawValue)"
                )
            }
            guard candidate.tensor.shape == reference.tensor.shape else {
                throw UpdateRejection(
                    .wrongShape,
                    "tensor \"\(candidate.name)\" has shape \(candidate.tensor.shape), expected \(reference.tensor.shape)"
                )
            }
            let (finite, squared) = Self.squaredDistance(candidate.tensor.floatValues, reference.tensor.floatValues)
            guard finite else {
                throw UpdateRejection(.nonFinite, "tensor \"\(candidate.name)\" contains NaN or infinity")
            }
            squaredNorm += squared
        }
        let norm = squaredNorm.squareRoot()
        if let maxUpdateNorm, norm > maxUpdateNorm {
            throw UpdateRejection(.normTooLarge, "update L2 norm \(norm) exceeds the limit \(maxUpdateNorm)")
        }
        return norm
    }

    /// Σ (a − b)² in double precision, and whether it is finite.
    ///
    /// A NaN or infinite element of `a` makes the sum NaN or infinite (`b`, the base model, is finite), and
    /// squares of float32 values cannot overflow a double, so one pass answers both questions.
    private static func squaredDistance(_ a: [Float], _ b: [Float]) -> (finite: Bool, squared: Double) {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var total = 0.0
                for i in 0..<a.count {
                    let difference = Double(a[i]) - Double(b[i])
                    total += difference * difference
                }
                return (total.isFinite, total)
            }
        }
    }
}
