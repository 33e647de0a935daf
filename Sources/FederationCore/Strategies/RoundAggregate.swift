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
            // A norm so large that C/‖Δ‖ underflows still folds as (nearly) the base model, never as 0.
            let shrink = clipNorm.map { update.norm > $0 ? max($0 / update.norm, .leastNonzeroMagnitude) : 1 } ?? 1
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
        switch self {
        case .streaming(var sums):
            self = .collecting(layout: ModelWeights([]), updates: [])
            return try sums.takeAverage().map { ($0, nil) }
        case .collecting(let layout, let updates):
            self = .collecting(layout: layout, updates: [])
            guard !updates.isEmpty else { return nil }
            let (weights, outcome) = try RobustAggregator.aggregate(strategy, layout: layout, updates: updates)
            return (weights, outcome)
        }
    }

    /// Takes DP-FedAvg's noised average out (see `StreamingFedAvg.takePrivateAverage`), leaving the aggregate
    /// empty.
    /// - Parameters:
    ///   - denominator: the fixed denominator, the round's selected clients.
    ///   - sumNoise: the noise's standard deviation on the sum of clipped updates.
    /// - Returns: nil when no result was added.
    /// - Precondition: the aggregate streams (differential privacy needs the FedAvg family).
    public mutating func takePrivately(denominator: Int, sumNoise: Double, using generator: inout NoiseGenerator)
        -> ModelWeights?
    {
        guard case .streaming(var sums) = self else {
            preconditionFailure("differential privacy needs the FedAvg family")
        }
        self = .collecting(layout: ModelWeights([]), updates: [])
        return sums.takePrivateAverage(denominator: denominator, sumNoise: sumNoise, using: &generator)
    }
}
