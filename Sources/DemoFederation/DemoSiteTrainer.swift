import FederationClient
import FederationCore
import Synchronization

/// A demo site's trainer: `DigitsTrainer`, and for a malicious site (`plan`) the attack applied to each
/// honestly trained update before it is sent. Evaluation stays honest, as an attacker that wants to go
/// unnoticed would keep it.
final class DemoSiteTrainer: Trainer {
    /// What a malicious site does.
    struct MaliciousPlan: Sendable {
        var attack: DemoAttack
        /// Shared by every malicious site of the demo.
        var board: CollusionBoard
        /// n and f of the attack's formulas.
        var sites: Int
        var malicious: Int
    }

    private let honest: DigitsTrainer
    private let plan: MaliciousPlan?
    private let generator: Mutex<SeededRandomNumberGenerator>

    init(honest: DigitsTrainer, plan: MaliciousPlan?, seed: UInt64) {
        self.honest = honest
        self.plan = plan
        self.generator = Mutex(SeededRandomNumberGenerator(seed: seed))
    }

    func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult {
        var result = try await honest.fit(model: model, task: task)
        guard let plan else { return result }
        let pooled =
            plan.attack == .littleIsEnough
            ? await plan.board.pool(round: task.round, adding: result.weights) : [result.weights]
        var local = generator.withLock { $0 }
        result.weights = plan.attack.corrupt(
            model: model, trained: result.weights, pooled: pooled, sites: plan.sites, malicious: plan.malicious,
            using: &local)
        generator.withLock { $0 = local }
        return result
    }

    func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport {
        try await honest.evaluate(model: model, task: task)
    }
}
