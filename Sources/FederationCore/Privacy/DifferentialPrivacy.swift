/// Central differential privacy for the FedAvg family: DP-FedAvg (McMahan et al., "Learning Differentially
/// Private Recurrent Language Models", ICLR 2018) with a fixed clip norm, or with the clip norm adapted to a
/// quantile of the update norms (Andrew et al., "Differentially Private Learning with Adaptive Clipping",
/// NeurIPS 2021).
///
/// Each accepted update's distance to the round's base model is clipped to the clip norm C, every update counts
/// the same (example counts do not weight a private average), and the sum of clipped updates gets Gaussian noise
/// of standard deviation z·C per coordinate (z the noise multiplier) and is divided by the round's selected
/// clients, fixed before anyone answers, before any server optimizer steps. Integer and boolean tensors keep the
/// base model's values. An `RDPAccountant` turns the rounds run into (ε, δ).
///
/// Invariant: every value is finite and in the range its property documents (checked by `validate()`).
public struct DifferentialPrivacy: Sendable, Equatable {
    /// How the clip norm is chosen.
    public enum Clipping: Sendable, Equatable {
        /// The same norm every round.
        case fixed(norm: Double)
        /// Starts at `initialNorm` and moves geometrically towards the `targetQuantile` of update norms:
        /// C ← C·exp(−learningRate·(b̃ − targetQuantile)), b̃ the noised fraction of updates no longer than C.
        /// `countStandardDeviation` is the noise on that count (nil: the round's selected clients / 20, the
        /// paper's choice); part of the privacy budget goes to it, so the updates' own noise multiplier is
        /// (z⁻² − (2σ_b)⁻²)^(−½).
        case adaptive(
            initialNorm: Double, targetQuantile: Double, learningRate: Double, countStandardDeviation: Double?)
    }

    /// The noise multiplier z: noise standard deviation over the clip norm, ≥ 0. Default 1.
    public var noiseMultiplier: Double
    /// Fixed or adaptive clipping. Default a fixed norm of 1.
    public var clipping: Clipping
    /// The δ that ε is reported at, in (0, 1); it should be below 1 / (clients in the federation). Default 1e-5.
    public var delta: Double
    /// The ε no round may take the federation past: a round that would is not started. nil: no limit.
    public var epsilonBudget: Double?
    /// Seeds the noise, for tests only; nil (the default) draws it from the system's random source.
    var noiseSeed: UInt64?

    public init(
        noiseMultiplier: Double = 1, clipping: Clipping = .fixed(norm: 1), delta: Double = 1e-5,
        epsilonBudget: Double? = nil
    ) {
        self.noiseMultiplier = noiseMultiplier
        self.clipping = clipping
        self.delta = delta
        self.epsilonBudget = epsilonBudget
    }

    /// The largest noise multiplier (and clipped-count standard deviation) accepted: far more noise than any
    /// model survives, but with the clip norm's own bound the noise stays a finite double.
    public static let maxNoiseMultiplier = 1e6

    /// The clip norm of the first round.
    public var initialClipNorm: Double {
        switch clipping {
        case .fixed(let norm): norm
        case .adaptive(let initialNorm, _, _, _): initialNorm
        }
    }

    /// The sampling rate the accountant composes every round with: 1. Amplification by sampling needs each
    /// client in a round independently and secretly at random (Poisson sampling); Rondo selects a fixed number
    /// of the clients online, with a seeded generator, so it is not credited.
    public static let samplingRate = 1.0

    /// The noise multiplier of the updates' noise in a round that selected `selected` clients: z itself with a
    /// fixed clip norm; with adaptive clipping, what is left of z once the count took its share.
    /// - Throws: `PrivacyConfigurationError` when the count's noise is too small to leave any (z ≥ 2σ_b).
    public func updateNoiseMultiplier(selected: Int) throws(PrivacyConfigurationError) -> Double {
        guard case .adaptive = clipping, noiseMultiplier > 0 else { return noiseMultiplier }
        let countDeviation = countStandardDeviation(selected: selected)
        guard noiseMultiplier < 2 * countDeviation else {
            throw PrivacyConfigurationError(
                .countNoiseTooSmall,
                "noise multiplier \(noiseMultiplier) needs a clipped-count standard deviation above \(noiseMultiplier / 2) (it is \(countDeviation)); raise --dp-clipped-count-stddev"
            )
        }
        let share =
            1 / (1 / (noiseMultiplier * noiseMultiplier) - 1 / (4 * countDeviation * countDeviation)).squareRoot()
        // z and 2σ_b so close that the difference of their inverse squares rounds to 0 leave no finite noise.
        guard share.isFinite else {
            throw PrivacyConfigurationError(
                .countNoiseTooSmall,
                "noise multiplier \(noiseMultiplier) and clipped-count standard deviation \(countDeviation) leave the updates no finite noise; raise --dp-clipped-count-stddev"
            )
        }
        return share
    }

    /// The standard deviation of the noise on the count of unclipped updates (adaptive clipping).
    public func countStandardDeviation(selected: Int) -> Double {
        guard case .adaptive(_, _, _, let given) = clipping else { return 0 }
        return given ?? Double(max(selected, 1)) / 20
    }

    /// Checks every value.
    /// - Throws: `PrivacyConfigurationError` naming the first value out of range.
    public func validate() throws(PrivacyConfigurationError) {
        func require(_ condition: Bool, _ message: String) throws(PrivacyConfigurationError) {
            if !condition { throw PrivacyConfigurationError(.invalidValue, message) }
        }
        try require(
            (0...Self.maxNoiseMultiplier).contains(noiseMultiplier),
            "the noise multiplier must be in 0...\(Self.maxNoiseMultiplier)")
        try require(delta > 0 && delta < 1, "delta must be in (0, 1)")
        try require(epsilonBudget.map { $0 > 0 && $0.isFinite } ?? true, "the epsilon budget must be positive")
        try require(
            epsilonBudget == nil || noiseMultiplier > 0,
            "an epsilon budget needs noise: without it epsilon is unbounded from the first round")
        let normRange = PrivacyAccount.clipNormRange
        switch clipping {
        case .fixed(let norm):
            try require(normRange.contains(norm), "the clip norm must be in \(normRange)")
        case .adaptive(let initialNorm, let quantile, let rate, let countDeviation):
            try require(normRange.contains(initialNorm), "the initial clip norm must be in \(normRange)")
            try require((0...1).contains(quantile), "the target quantile must be in [0, 1]")
            try require(rate > 0 && rate <= 10, "the clip learning rate must be in (0, 10]")
            try require(
                countDeviation.map { (0...Self.maxNoiseMultiplier).contains($0) } ?? true,
                "the clipped-count standard deviation must be in 0...\(Self.maxNoiseMultiplier)")
            if let countDeviation, noiseMultiplier > 0 {
                try require(
                    noiseMultiplier < 2 * countDeviation,
                    "noise multiplier \(noiseMultiplier) needs a clipped-count standard deviation above \(noiseMultiplier / 2)"
                )
            }
        }
    }
}
