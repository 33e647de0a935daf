/// What makes a model file unfit to become a federation's model, checked before `checkpoints import` (and
/// `serve --initial-model`) stores it.
public enum ModelImportCheck {
    /// Why a model was refused.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Reason: String, Sendable {
            /// No tensors, or no elements at all.
            case empty
            /// NaN or infinity in a tensor.
            case nonFinite = "non_finite"
            /// Names, shapes or dtypes differ from the current model's (allowed with `--force`).
            case layoutChanged = "layout_changed"
        }

        public var reason: Reason
        public var message: String
        public var description: String { "\(reason.rawValue): \(message)" }

        public init(reason: Reason, message: String) {
            self.reason = reason
            self.message = message
        }
    }

    /// Checks `weights` on their own: at least one element, every value finite.
    public static func checkContents(_ weights: ModelWeights) throws(Refusal) {
        guard weights.tensors.contains(where: { $0.tensor.elementCount > 0 }) else {
            throw Refusal(reason: .empty, message: "the model has no tensor elements")
        }
        for named in weights.tensors where !TensorElements.allFinite(named.tensor) {
            throw Refusal(reason: .nonFinite, message: "tensor \"\(named.name)\" holds NaN or infinity")
        }
    }

    /// Checks `weights` against the federation's current model: a different layout would make every client's
    /// next update fail validation, so it is refused unless the operator forces it.
    public static func checkLayout(_ weights: ModelWeights, against current: ModelWeights) throws(Refusal) {
        guard !weights.hasSameLayout(as: current) else { return }
        let describe = { (model: ModelWeights) in
            model.tensors.prefix(4).map { "\($0.name)\($0.tensor.shape)" }.joined(separator: ", ")
                + (model.tensors.count > 4 ? ", … (\(model.tensors.count) tensors)" : "")
        }
        throw Refusal(
            reason: .layoutChanged,
            message: "the file's layout (\(describe(weights))) differs from the current model's (\(describe(current)))")
    }
}
