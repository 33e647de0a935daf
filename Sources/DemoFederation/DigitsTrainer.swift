import FederationClient
import FederationCore
import Synchronization

/// A demo client's `Trainer`: softmax regression on its own partition, evaluation on its own held-out slice.
///
/// Reads `local_epochs`, `learning_rate` and `batch_size` from the task config. When a `vanish` hook is set,
/// it is asked before each fit whether this client should disappear mid-round (the demo's dropout simulation).
public final class DigitsTrainer: Trainer {
    public let train: DigitsDataset
    public let test: DigitsDataset
    private let generator: Mutex<SeededRandomNumberGenerator>
    private let vanish: @Sendable (TaskContext) async -> Void
    private let taskDelay: Duration

    /// - Parameters:
    ///   - taskDelay: extra time every task takes (a slow site; crash drills use it to land in a phase).
    ///   - vanish: awaited before each fit; the demo cancels the client from inside it.
    public init(
        train: DigitsDataset, test: DigitsDataset, seed: UInt64, taskDelay: Duration = .zero,
        vanish: @escaping @Sendable (TaskContext) async -> Void = { _ in }
    ) {
        self.train = train
        self.test = test
        self.generator = Mutex(SeededRandomNumberGenerator(seed: seed))
        self.taskDelay = taskDelay
        self.vanish = vanish
    }

    public func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult {
        await vanish(task)
        if taskDelay > .zero { try await Task.sleep(for: taskDelay) }
        try Task.checkCancellation()
        var regression = try SoftmaxRegression(weights: model)
        let epochs = Int(task.config["local_epochs"] ?? "") ?? 1
        let learningRate = Float(task.config["learning_rate"] ?? "") ?? 0.1
        let batchSize = Int(task.config["batch_size"] ?? "") ?? 16
        var local = generator.withLock { $0 }
        regression.train(
            on: train, epochs: epochs, learningRate: learningRate, batchSize: batchSize, using: &local,
            proximal: ProximalTerm(task: task, global: model))
        generator.withLock { $0 = local }
        let (loss, accuracy) = regression.evaluate(on: train)
        return FitResult(
            weights: regression.weights, numExamples: train.count,
            metrics: ["train_loss": loss, "train_accuracy": accuracy])
    }

    public func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport {
        if taskDelay > .zero { try await Task.sleep(for: taskDelay) }
        let (loss, accuracy) = try SoftmaxRegression(weights: model).evaluate(on: test)
        return EvaluationReport(loss: loss, numExamples: test.count, metrics: ["accuracy": accuracy])
    }
}
