extension RoundConfiguration {
    /// Checks `privacy` and that the rest of the configuration lets it hold: DP-FedAvg's sensitivity bound needs
    /// the FedAvg family (a robust aggregator's output is not a clipped sum), unit weights (no weight cap) and
    /// its own clip norm (no separate `clipNorm`).
    /// - Throws: `PrivacyConfigurationError`.
    public func checkPrivacy() throws(PrivacyConfigurationError) {
        guard let privacy else { return }
        try privacy.validate()
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
