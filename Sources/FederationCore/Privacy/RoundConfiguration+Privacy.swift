extension RoundConfiguration {
    /// Checks `privacy` and that the rest of the configuration lets it hold: DP-FedAvg's sensitivity bound needs
    /// the FedAvg family (a robust aggregator's output is not a clipped sum), unit weights (no weight cap) and
    /// its own clip norm (no separate `clipNorm`). With adaptive clipping's default count noise (selected / 20),
    /// the smallest cohort that can aggregate (`minFitResults`: every selection is at least that) must leave
    /// the updates some noise, so no round can fail on it after training.
    /// - Throws: `PrivacyConfigurationError`.
    public func checkPrivacy() throws(PrivacyConfigurationError) {
        guard let privacy else { return }
        try privacy.validate()
        do {
            _ = try privacy.updateNoiseMultiplier(selected: minFitResults)
        } catch {
            throw PrivacyConfigurationError(
                error.code,
                "\(error.message) (a round may select as few as \(minFitResults) clients, so the default of selected / 20 is too small)"
            )
        }
        if strategy.name.needsEveryUpdate {
            throw PrivacyConfigurationError(
                .incompatible, "differential privacy works with the FedAvg family, not \(strategy.name.rawValue)")
        }
        if weightCap != nil {
            throw PrivacyConfigurationError(
                .incompatible, "differential privacy weighs every update the same; drop the weight cap")
        }
        if clipNorm != nil {
            throw PrivacyConfigurationError(
                .incompatible, "differential privacy clips to its own norm; drop --clip-update-norm")
        }
    }
}
