/// What `rondo demo` reports at the end (and writes with `--summary-json`).
public struct DemoSummary: Codable, Sendable, Equatable {
    /// Rounds run (committed + failed).
    public var rounds: Int
    public var committedRounds: Int
    public var failedRounds: Int
    /// Accuracy of the final global model on the whole held-out slice, computed centrally.
    public var finalAccuracy: Double
    /// Mean cross-entropy of the final global model on the held-out slice.
    public var finalLoss: Double
    /// Accuracy from the last round's federated evaluation, if it had one.
    public var finalFederatedAccuracy: Double?
    public var finalModelVersion: Int
    public var durationSeconds: Double

    enum CodingKeys: String, CodingKey {
        case rounds
        case committedRounds = "committed_rounds"
        case failedRounds = "failed_rounds"
        case finalAccuracy = "final_accuracy"
        case finalLoss = "final_loss"
        case finalFederatedAccuracy = "final_federated_accuracy"
        case finalModelVersion = "final_model_version"
        case durationSeconds = "duration_seconds"
    }
}
