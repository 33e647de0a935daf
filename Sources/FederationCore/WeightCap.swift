/// Caps how much of a weighted average any single client can hold (`--max-client-weight-share`).
///
/// FedAvg weights each client by the examples it reports, so one client that claims a huge count becomes the
/// whole average. With a cap of share `s`, weights are clipped at a common level `c` (water-filling): every
/// client keeps `min(nᵢ, c)`, with the largest `c` for which no clipped client holds more than `s` of the
/// total. Clients below the level keep their weight, so an honest federation with no dominant client is
/// averaged exactly as before.
///
/// Invariants: at most `⌈1/s⌉ − 1` clients are clipped, and they are the ones with the largest weights; with
/// `n` clients and `n·s ≤ 1` no weighting can satisfy the cap, and all clients get equal weight (the closest
/// possible, each holding `1/n`).
public struct WeightCap: Sendable, Equatable {
    /// The largest share of a round's total weight one client may hold, in (0, 1].
    public let maxShare: Double

    /// - Precondition: `maxShare` is in (0, 1].
    public init(maxShare: Double) {
        precondition(maxShare > 0 && maxShare <= 1, "a weight share must be in (0, 1]")
        self.maxShare = maxShare
    }

    /// How many of the largest weights may end up clipped: only these need to be kept aside by a streaming fold.
    public var clippedClientBound: Int { Int((1 / maxShare).rounded(.up)) }

    /// The clipping level for `weights`, or nil when no weight exceeds the share and nothing is clipped.
    /// - Precondition: every weight is positive and finite.
    public func level(for weights: [Double]) -> Double? {
        let total = weights.reduce(0, +)
        guard let largest = weights.max(), largest > maxShare * total else { return nil }
        if maxShare * Double(weights.count) <= 1 {
            // No weighting meets the cap: equal weights come closest.
            return weights.min()
        }
        let descending = weights.sorted(by: >)
        // unclipped[k]: the sum of all but the k largest, summed from the smallest up so a huge weight cannot
        // swallow the small ones in floating point.
        var unclippedSums = [Double](repeating: 0, count: descending.count + 1)
        for index in stride(from: descending.count - 1, through: 0, by: -1) {
            unclippedSums[index] = unclippedSums[index + 1] + descending[index]
        }
        // Clip the k largest at c = s·L / (1 − s·k), where L is the sum of the weights left unclipped; the first
        // k whose level is at least the largest unclipped weight is the answer (the level falls as k grows).
        for k in 1..<descending.count {
            let unclipped = unclippedSums[k]
            let denominator = 1 - maxShare * Double(k)
            guard denominator > 0 else { break }
            let level = maxShare * unclipped / denominator
            if level >= descending[k] { return level }
        }
        return weights.min()
    }

    /// `weights` clipped at their level (unchanged when nothing exceeds the share).
    public func apply(to weights: [Double]) -> [Double] {
        guard let level = level(for: weights) else { return weights }
        return weights.map { min($0, level) }
    }
}
