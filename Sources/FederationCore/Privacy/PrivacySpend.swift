/// What one differentially private round spent: a row of the privacy ledger, stored in the same transaction
/// as the round's candidate model, so every released noised aggregate is accounted for and none twice.
///
/// The ledger is never rolled back or pruned: a rollback takes a model back, not what clients' data revealed.
public struct PrivacySpend: Sendable, Equatable, Codable {
    /// The round whose aggregate this accounts for (one row per round).
    public var round: Int
    /// The sampling rate q the accountant composed the round with.
    public var samplingRate: Double
    /// The noise multiplier z the accountant composed the round with (for adaptive clipping the total, of
    /// which the count of unclipped updates took a share).
    public var noiseMultiplier: Double
    /// The clip norm the round's updates were clipped to.
    public var clipNorm: Double
    /// The clip norm the next round uses (equal to `clipNorm` with fixed clipping).
    public var nextClipNorm: Double
    /// Results averaged.
    public var results: Int
    /// Of those, how many were no longer than the clip norm (before noise: it stays in the store, an operator
    /// channel, and is in no API).
    public var unclipped: Int

    public init(
        round: Int, samplingRate: Double, noiseMultiplier: Double, clipNorm: Double, nextClipNorm: Double,
        results: Int, unclipped: Int
    ) {
        self.round = round
        self.samplingRate = samplingRate
        self.noiseMultiplier = noiseMultiplier
        self.clipNorm = clipNorm
        self.nextClipNorm = nextClipNorm
        self.results = results
        self.unclipped = unclipped
    }
}
