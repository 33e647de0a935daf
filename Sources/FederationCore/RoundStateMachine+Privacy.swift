/// Differential privacy in the round: the budget check before a round, the noise on its sums, and its spend.
extension RoundStateMachine {
    /// Refuses a round that would take ε past the budget: the federation finishes instead. nil when the round
    /// may start.
    mutating func refuseOverBudget() -> [Action]? {
        guard let account = privacy, let budget = account.settings.epsilonBudget else { return nil }
        let projected = account.projectedEpsilon
        guard projected > budget else { return nil }
        privacy?.budgetReached = true
        phase = .finished
        return [.privacyBudgetReached(spent: account.epsilon, projected: projected, budget: budget)]
            + announcePhase()
    }

    /// DP-FedAvg's fixed denominator k: the clients a round expects results from, known before any answers
    /// (the selected clients, or the goal count when goal-count selection over-selects); never below the
    /// results accepted.
    func privateDenominator(_ progress: RoundProgress) -> Int {
        max(progress.accepted, min(progress.selected, configuration.selection.goal?.count ?? progress.selected))
    }

    /// The standard deviation of the noise added to the round's sums of unit-weighted clipped updates: z_Δ·C.
    /// 0 without differential privacy.
    /// - Throws: `PrivacyConfigurationError` when adaptive clipping's count noise leaves the updates none.
    func privacySumNoise(cohort: Int) throws(PrivacyConfigurationError) -> Double {
        guard let privacy else { return 0 }
        return try privacy.settings.updateNoiseMultiplier(selected: cohort) * privacy.clipNorm
    }

    /// The store wrote the round's candidate with its ledger row: the spend counts from now on, whatever happens
    /// to the candidate next (even when the server then fails to hold it and reports `candidateStoreFailed`).
    /// `candidateStored` records it too when this was not called.
    public mutating func privacySpendStored(round: Int) {
        guard case .aggregating(var progress) = phase, progress.round == round, let spend = progress.privacySpend
        else { return }
        privacy?.record(spend)
        progress.privacySpend = nil
        phase = .aggregating(progress)
    }

    /// What an aggregated round spends, with the clip norm the next round uses; nil without differential
    /// privacy. Adaptive clipping draws the count's noise here.
    mutating func privacySpend(_ progress: RoundProgress, cohort: Int) -> PrivacySpend? {
        guard let account = privacy else { return nil }
        let next = privacy!.nextClipNorm(unclipped: progress.unclipped, answered: progress.accepted, selected: cohort)
        return PrivacySpend(
            round: progress.round, samplingRate: DifferentialPrivacy.samplingRate,
            noiseMultiplier: account.settings.noiseMultiplier, clipNorm: account.clipNorm, nextClipNorm: next,
            results: progress.accepted, unclipped: progress.unclipped)
    }
}

extension RoundStateMachine {
    /// True when the next round would pass the budget: a coordinator restarted on a spent ledger starts
    /// finished, instead of waiting for clients to find out. Marks the account.
    mutating func budgetSpentAtStart() -> Bool {
        guard let account = privacy, let budget = account.settings.epsilonBudget, account.projectedEpsilon > budget
        else { return false }
        privacy?.budgetReached = true
        return true
    }
}
