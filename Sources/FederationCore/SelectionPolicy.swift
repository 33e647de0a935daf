/// How many clients a round samples, with Flower's parameter names.
///
/// A round starts only when at least `max(minAvailableClients, minFitClients)` clients are connected; it then
/// samples `max(minFitClients, ceil(fractionFit × available))` of them (never more than are available) with
/// the coordinator's seeded generator, so a seed reproduces the selection.
public struct SelectionPolicy: Sendable, Equatable {
    /// Share of connected clients asked to train each round, in (0, 1]. Default 1.0.
    public var fractionFit: Double
    /// Fewest clients asked to train. Default 2.
    public var minFitClients: Int
    /// Connected clients needed before a round starts. Default 2.
    public var minAvailableClients: Int
    /// Share of connected clients asked to evaluate the aggregated model, in [0, 1]; 0 turns federated
    /// evaluation off. Default 1.0.
    public var fractionEvaluate: Double
    /// Fewest clients asked to evaluate when evaluation is on. Default 1.
    public var minEvaluateClients: Int
    /// Google's goal-count form; when set it decides when a round opens and how many clients train, in place
    /// of `fractionFit`, `minFitClients` and `minAvailableClients`. Default nil.
    public var goal: SelectionGoal?

    public init(
        fractionFit: Double = 1.0,
        minFitClients: Int = 2,
        minAvailableClients: Int = 2,
        fractionEvaluate: Double = 1.0,
        minEvaluateClients: Int = 1,
        goal: SelectionGoal? = nil
    ) {
        precondition(fractionFit > 0 && fractionFit <= 1, "fraction_fit must be in (0, 1]")
        precondition(fractionEvaluate >= 0 && fractionEvaluate <= 1, "fraction_evaluate must be in [0, 1]")
        precondition(minFitClients >= 1 && minAvailableClients >= 1 && minEvaluateClients >= 1)
        self.fractionFit = fractionFit
        self.minFitClients = minFitClients
        self.minAvailableClients = minAvailableClients
        self.fractionEvaluate = fractionEvaluate
        self.minEvaluateClients = minEvaluateClients
        self.goal = goal
    }

    /// The number of fit clients to sample, or nil when too few are available to start a round.
    public func fitSampleSize(available: Int) -> Int? {
        guard available >= max(minAvailableClients, minFitClients) else { return nil }
        return min(available, max(minFitClients, Int((fractionFit * Double(available)).rounded(.up))))
    }

    /// The number of evaluation clients to sample, or nil when evaluation is off or too few are available.
    public func evaluateSampleSize(available: Int) -> Int? {
        guard fractionEvaluate > 0, available >= minEvaluateClients else { return nil }
        return min(available, max(minEvaluateClients, Int((fractionEvaluate * Double(available)).rounded(.up))))
    }

    /// Samples `count` clients without replacement.
    ///
    /// The candidates are sorted first so the result depends only on the set of clients and the generator,
    /// not on registration order.
    public static func sample(
        _ count: Int, from candidates: [ClientID], using generator: inout some RandomNumberGenerator
    ) -> [ClientID] {
        var pool = candidates.sorted()
        let take = min(count, pool.count)
        for index in 0..<take {
            let pick = Int.random(in: index..<pool.count, using: &generator)
            pool.swapAt(index, pick)
        }
        return Array(pool[0..<take]).sorted()
    }
}
