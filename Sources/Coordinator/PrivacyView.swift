import FederationCore

/// Differential privacy as `/v1/status` shows it: the settings, the clip norm in force, and the budget spent.
public struct PrivacyView: Codable, Sendable, Equatable {
    /// How the clip norm is chosen.
    public enum ClippingKind: String, Codable, Sendable {
        case fixed, adaptive
    }

    /// The noise multiplier z (`--dp-noise-multiplier`).
    public var noiseMultiplier: Double
    /// Fixed or adaptive clipping.
    public var clipping: ClippingKind
    /// The clip norm the next round's updates are clipped to.
    public var clipNorm: Double
    /// Adaptive clipping's target quantile of update norms; null with a fixed clip norm.
    @Nullable public var targetQuantile: Double?
    /// The δ that `epsilon` is given at (`--dp-delta`).
    public var delta: Double
    /// ε spent at `delta` over the privacy ledger; null when unbounded (a round ran without noise).
    @Nullable public var epsilon: Double?
    /// The budget (`--dp-epsilon-budget`); null when none is set.
    @Nullable public var epsilonBudget: Double?
    /// Rounds in the privacy ledger.
    public var rounds: Int
    /// True once a round was refused for the budget (the federation finished).
    public var budgetReached: Bool

    public init(_ account: PrivacyAccount) {
        let settings = account.settings
        noiseMultiplier = settings.noiseMultiplier
        clipNorm = account.clipNorm
        switch settings.clipping {
        case .fixed:
            clipping = .fixed
            targetQuantile = nil
        case .adaptive(_, let quantile, _, _):
            clipping = .adaptive
            targetQuantile = quantile
        }
        delta = settings.delta
        let spent = account.epsilon
        epsilon = spent.isFinite ? spent : nil
        epsilonBudget = settings.epsilonBudget
        rounds = account.accountant.rounds
        budgetReached = account.budgetReached
    }

    enum CodingKeys: String, CodingKey {
        case clipping, delta, epsilon, rounds
        case noiseMultiplier = "noise_multiplier"
        case clipNorm = "clip_norm"
        case targetQuantile = "target_quantile"
        case epsilonBudget = "epsilon_budget"
        case budgetReached = "budget_reached"
    }
}
