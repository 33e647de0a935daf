/// Why a differential-privacy setting was refused.
public struct PrivacyConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A value is out of its range.
        case invalidValue = "invalid_value"
        /// Differential privacy was combined with a setting it cannot honour (a robust aggregator, a weight cap,
        /// a separate update clip norm).
        case incompatible
        /// Adaptive clipping's count noise is too small to leave the updates any noise (z ≥ 2σ_b).
        case countNoiseTooSmall = "count_noise_too_small"
    }

    /// What kind of setting was refused.
    public let code: Code
    /// The refusal in words, naming the option and the value.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
