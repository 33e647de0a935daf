import FederationCore
import Logging
import ModelManager

/// Differential privacy's telemetry and records: each round's spend, and the refusal of a round over budget.
extension RoundDriver {
    /// A private round's candidate (and its ledger row) was stored: the gauges, the round's span and a log line
    /// follow the ledger.
    func privacySpent(_ spend: PrivacySpend) {
        guard let account = machine.privacy else { return }
        let epsilon = account.epsilon
        metrics.privacy(account)
        tracing.privacySpent(spend, epsilon: epsilon)
        logger.info(
            "privacy spent",
            metadata: roundScoped([
                "round": "\(spend.round)", "epsilon": "\(epsilon)", "delta": "\(account.settings.delta)",
                "sampling_rate": "\(spend.samplingRate)", "noise_multiplier": "\(spend.noiseMultiplier)",
                "clip_norm": "\(spend.clipNorm)", "next_clip_norm": "\(spend.nextClipNorm)",
                "results": "\(spend.results)",
            ]))
    }

    /// The next round would have exceeded the budget: the gauges and an error log, before the event is written.
    func announcePrivacyBudgetReached(spent: Double, projected: Double, budget: Double) {
        if let account = machine.privacy { metrics.privacy(account) }
        logger.error(
            "privacy budget reached: no further round starts",
            metadata: ["epsilon": "\(spent)", "projected_epsilon": "\(projected)", "epsilon_budget": "\(budget)"])
    }

    /// Records the refusal as an event, so `rondo history` and the audit trail show why training stopped.
    func recordPrivacyBudgetReached(spent: Double, projected: Double, budget: Double) async {
        await persist("privacy budget event") {
            try await $0.recordEvent(
                kind: .privacyBudgetReached, actor: "coordinator", round: nil,
                detail: ["epsilon": "\(spent)", "projected_epsilon": "\(projected)", "epsilon_budget": "\(budget)"],
                traceID: nil)
        }
    }

    /// A federation whose history mixes private and non-private rounds gets a warning at start: ε covers only
    /// the rounds in the ledger, not models released without noise.
    static func warnAboutMixedPrivacy(
        _ coverage: (privateRounds: Int, committedWithoutPrivacy: Int), private: Bool, logger: Logger
    ) {
        if `private`, coverage.committedWithoutPrivacy > 0 {
            logger.warning(
                "earlier rounds committed without differential privacy: epsilon covers only the private rounds",
                metadata: [
                    "rounds_without_privacy": "\(coverage.committedWithoutPrivacy)",
                    "private_rounds": "\(coverage.privateRounds)",
                ])
        } else if !`private`, coverage.privateRounds > 0 {
            logger.warning(
                "differential privacy is off, but the privacy ledger holds private rounds: this run's rounds are not private",
                metadata: ["private_rounds": "\(coverage.privateRounds)"])
        }
    }
}
