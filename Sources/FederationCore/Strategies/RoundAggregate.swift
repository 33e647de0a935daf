/// How a training phase gathers its accepted results: folded into FedAvg's running sums as they arrive
/// (FedAvg and the server optimizers), or kept whole for an aggregator that needs every result at once (the
/// robust ones; an upload stays in its spool file on disk until training closes).
public enum RoundAggregate: Sendable {
    case streaming(StreamingFedAvg)
    case collecting(layout: ModelWeights, updates: [CollectedUpdate])

    /// An empty aggregate for a round of `strategy` on a model laid out like `layout`.
    /// - Parameter weightCap: caps a client's share of FedAvg's average (streaming strategies only; robust
    ///   aggregators are unweighted, or, for Multi-Krum, weighted among the results they keep).
    public init(strategy: AggregationStrategy, layout: ModelWeights, weightCap: WeightCap?) {
        self =
            strategy.name.needsEveryUpdate
            ? .collecting(layout: layout, updates: [])
            : .streaming(StreamingFedAvg(layout: layout, weightCap: weightCap))
    }

    /// Adds an accepted result.
    /// - Parameter clipNorm: folds an update farther than this from the base model scaled down to it
    ///   (streaming only; see `RoundConfiguration.clipNorm`).
    /// - Parameter uniform: folds the update at weight 1 instead of its example count (differential privacy:
    ///   a client's share may not depend on what it reports).
    /// - Throws: when its payload cannot be read (streaming only; the sums may then hold part of it).
    public mutating func fold(_ update: CheckedUpdate, client: ClientID, clipNorm: Double? = nil, uniform: Bool = false)
        throws
    {
        switch self {
        case .streaming(var sums):
            self = .collecting(layout: ModelWeights([]), updates: [])  // drop the second reference: fold in place
            defer { self = .streaming(sums) }
            let shrink = clipNorm.map { update.norm > $0 ? $0 / update.norm : 1 } ?? 1
            try sums.fold(payload: update.payload, numExamples: uniform ? 1 : update.numExamples, shrink: shrink)
        case .collecting(let layout, var updates):
            self = .collecting(layout: layout, updates: [])
            updates.append(CollectedUpdate(client: client, numExamples: update.numExamples, payload: update.payload))
            self = .collecting(layout: layout, updates: updates)
        }
    }

    /// Takes the round's aggregate out, leaving the aggregate empty: FedAvg's average (freeing its sums as it
    /// writes it), or the robust aggregator's result with what it did.
    /// - Returns: nil when no result was added.
    /// - Throws: when a kept result cannot be read back.
    public mutating func take(_ strategy: AggregationStrategy) throws -> (
        weights: ModelWeights, outcome: AggregationOutcome?
    )? {
        var unused = NoiseGenerator.system
        return try take(strategy, sumNoise: 0, using: &unused)
    }

    /// Takes the round's aggregate out, as `take(_:)`, with noise on FedAvg's sums.
    /// - Parameters:
    ///   - sumNoise: Gaussian noise added to FedAvg's sums before they are averaged (see
    ///     `StreamingFedAvg.takeAverage(sumNoise:using:)`); streaming only.
    ///   - generator: where that noise comes from.
    public mutating func take(
        _ strategy: AggregationStrategy, sumNoise: Double = 0, using generator: inout NoiseGenerator
    ) throws -> (weights: ModelWeights, outcome: AggregationOutcome?)? {
        switch self {
        case .streaming(var sums):
            self = .collecting(layout: ModelWeights([]), updates: [])
            return try sums.takeAverage(sumNoise: sumNoise, using: &generator).map { ($0, nil) }
        case .collecting(let layout, let updates):
            self = .collecting(layout: layout, updates: [])
            precondition(sumNoise == 0, "robust aggregators take no noise")
            guard !updates.isEmpty else { return nil }
            let (weights, outcome) = try RobustAggregator.aggregate(strategy, layout: layout, updates: updates)
            return (weights, outcome)
        }
    }
}
