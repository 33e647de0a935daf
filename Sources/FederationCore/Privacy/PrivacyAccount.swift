#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The privacy state of a federation under `DifferentialPrivacy`: the accountant over every round in the
/// ledger, the clip norm the next round uses, and the noise source. Owned by the round state machine.
///
/// Invariant: `accountant` composes exactly the rounds of the ledger it was built from plus every spend
/// `record`ed since, and `clipNorm` is the last spend's `nextClipNorm` (the initial norm before any).
public struct PrivacyAccount: Sendable {
    public let settings: DifferentialPrivacy
    public private(set) var accountant = RDPAccountant()
    /// The clip norm the next round's updates are clipped to.
    public private(set) var clipNorm: Double
    /// Set once a round was refused for the budget: no round starts any more in this run.
    public internal(set) var budgetReached = false
    var noise: NoiseGenerator

    /// - Parameter ledger: every round spent so far, in round order (from the store).
    public init(settings: DifferentialPrivacy, ledger: [PrivacySpend] = []) {
        self.settings = settings
        self.clipNorm = settings.initialClipNorm
        self.noise = NoiseGenerator(seed: settings.noiseSeed)
        for spend in ledger { record(spend) }
        if case .fixed(let norm) = settings.clipping { clipNorm = norm }
    }

    /// ε spent so far at the configured δ.
    public var epsilon: Double { accountant.epsilon(delta: settings.delta) }

    /// ε once one more round has run.
    public var projectedEpsilon: Double {
        accountant.composing(samplingRate: DifferentialPrivacy.samplingRate, noiseMultiplier: settings.noiseMultiplier)
            .epsilon(delta: settings.delta)
    }

    /// Adds a stored round's spend.
    public mutating func record(_ spend: PrivacySpend) {
        accountant.compose(samplingRate: spend.samplingRate, noiseMultiplier: spend.noiseMultiplier)
        clipNorm = spend.nextClipNorm
    }

    /// The clip norm after a round in which `unclipped` of the `answered` updates were no longer than the
    /// current one (Andrew et al., Algorithm 1, with TensorFlow Privacy's centred, fixed-denominator estimate):
    /// b̃ = (Σ(bᵢ − ½) + N(0, σ_b²)) / selected + ½, clamped to [0, 1] (post-processing), then
    /// C·exp(−η(b̃ − γ)), kept within `clipNormRange`. The current norm with fixed clipping.
    mutating func nextClipNorm(unclipped: Int, answered: Int, selected: Int) -> Double {
        guard case .adaptive(_, let quantile, let rate, _) = settings.clipping, selected > 0 else { return clipNorm }
        let deviation = settings.countStandardDeviation(selected: selected)
        let centred =
            Double(unclipped) - Double(answered) / 2 + (deviation > 0 ? noise.standardNormal() * deviation : 0)
        let fraction = min(1, max(0, centred / Double(selected) + 0.5))
        let next = clipNorm * exp(-rate * (fraction - quantile))
        return min(Self.clipNormRange.upperBound, max(Self.clipNormRange.lowerBound, next))
    }

    /// Where adaptive clipping keeps the clip norm: far beyond any useful value, but finite and positive, so no
    /// run of rounds can drive it to 0 or infinity.
    public static let clipNormRange = 1e-12...1e12
}
