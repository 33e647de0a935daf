/// Why a client's result was not accepted.
///
/// `reason` is a closed set of stable identifiers: the server uses it as an API error code and as the bounded
/// `reason` label of the rejection counter. `message` carries the detail (which tensor, which value).
public struct UpdateRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        /// The body could not be decoded (bad safetensors, bad JSON, missing `num_examples`).
        case malformed
        /// No task with that id exists.
        case unknownTask = "unknown_task"
        /// The task belongs to another client.
        case notYourTask = "not_your_task"
        /// The task was already answered.
        case duplicate
        /// The task's round or phase closed, or the task was already counted as a dropout.
        case late
        /// Tensor names differ from the base model's.
        case wrongNames = "wrong_names"
        /// A tensor's shape differs from the base model's.
        case wrongShape = "wrong_shape"
        /// A tensor's dtype differs from the base model's.
        case wrongDType = "wrong_dtype"
        /// NaN or infinity in the weights or the reported numbers.
        case nonFinite = "non_finite"
        /// The update (weights − base) has an L2 norm above the configured bound.
        case normTooLarge = "norm_too_large"
        /// The result was well-formed but reports an impossible value (for example zero examples).
        case invalidValue = "invalid_value"
    }

    public var reason: Reason
    public var message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(reason.rawValue): \(message)" }
}
