import FederationCore

/// What a client does with a task: the user's training and evaluation code.
///
/// Mirrors Flower's `NumPyClient.fit` / `evaluate`: the SDK downloads the task's model, calls one of these,
/// and submits the answer. A thrown error is reported to the coordinator as a failed task (an `error` dropout).
public protocol Trainer: Sendable {
    /// Trains locally starting from `model`; returns the updated weights, the examples used, and metrics.
    func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult
    /// Evaluates `model` on local held-out data.
    func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport
}

/// The task a `Trainer` is working on.
public struct TaskContext: Sendable, Equatable {
    public var taskID: String
    public var round: Int
    public var kind: TaskKind
    public var modelVersion: Int
    /// Hyper-parameters from the coordinator (`local_epochs`, `learning_rate`, …).
    public var config: [String: String]
    /// Seconds left to answer when the task arrived.
    public var deadlineSeconds: Double

    public init(
        taskID: String, round: Int, kind: TaskKind, modelVersion: Int, config: [String: String], deadlineSeconds: Double
    ) {
        self.taskID = taskID
        self.round = round
        self.kind = kind
        self.modelVersion = modelVersion
        self.config = config
        self.deadlineSeconds = deadlineSeconds
    }
}
