import FederationCore
import Logging
import ModelManager

/// The aggregation strategy's record and state as the store keeps them (see `ServerOptimizerState`).
extension RoundDriver {
    /// What a candidate records about the strategy that produced it, with its round's privacy spend.
    func strategyRecord(privacySpend spend: PrivacySpend?) -> StrategyRecord {
        let strategy = configuration.rounds.strategy
        var record = StrategyRecord(name: strategy.name.rawValue, parameters: strategy.namedParameters)
        if let spend, let account = machine.privacy {
            let epsilon = account.accountant.composing(
                samplingRate: spend.samplingRate, noiseMultiplier: spend.noiseMultiplier
            ).epsilon(delta: account.settings.delta)
            record.privacy = PrivacyRecord(
                noiseMultiplier: spend.noiseMultiplier, clipNorm: spend.clipNorm, samplingRate: spend.samplingRate,
                delta: account.settings.delta, epsilon: epsilon.isFinite ? epsilon : nil)
        }
        return record
    }

    /// The server state stored with `version`, when the configured strategy can continue from it; nil starts
    /// the optimizer afresh (FedAvg, an imported version, another strategy, a changed layout, or a state that
    /// fails its hash, which is logged as an error).
    static func serverState(
        of version: Int, model: ModelWeights, strategy: AggregationStrategy, store: CheckpointStore, logger: Logger
    ) async -> ServerOptimizerState? {
        guard strategy.keepsServerState else { return nil }
        let state: ServerOptimizerState
        do {
            guard let bytes = try await store.serverState(version: version) else {
                logger.notice(
                    "the model version has no server state: the optimizer starts afresh",
                    metadata: ["version": "\(version)", "strategy": "\(strategy)"])
                return nil
            }
            // Two buffers per tensor: twice the tensors a model may have.
            let limits = SafeTensorsLimits(maxTensorCount: 2 * SafeTensorsLimits.default.maxTensorCount)
            state = try ServerOptimizerState(file: SafeTensorsFile.decode(bytes, limits: limits))
        } catch {
            logger.error(
                "the server state stored with the model is unreadable: the optimizer starts afresh",
                metadata: ["version": "\(version)", "error": "\(error)"])
            return nil
        }
        guard state.fits(model, strategy: strategy) else {
            logger.notice(
                "the stored server state is another strategy's or another layout's: the optimizer starts afresh",
                metadata: ["version": "\(version)", "stored": "\(state.strategy.rawValue)", "strategy": "\(strategy)"])
            return nil
        }
        if let written = state.parameters, written != strategy.description {
            logger.notice(
                "the strategy's parameters changed since its state was written: the buffers carry on under the new ones",
                metadata: ["version": "\(version)", "written_with": "\(written)", "strategy": "\(strategy)"])
        }
        return state
    }
}
