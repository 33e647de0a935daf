/// Pace steering (Bonawitz et al., SysML 2019): the coordinator tells each idle client when to come back, so
/// that re-polls arrive spread out at a rate the coordinator chose instead of in waves.
///
/// Waves come from clients that act in step: the ones that registered in the same second have polls that end in
/// the same second, every round's selected clients finish together, and a restarted coordinator sees every
/// client at once. Each poll that ends without a task is answered with a delay drawn uniformly from
/// `0...spread` whole seconds, where `spread = connected / pollRate` seconds, capped at `maxDelay`: with N clients
/// connected, re-polls then arrive at no more than about `pollRate` per second however they were bunched before
/// (fewer while clients hold long-polls, since a poll's own wait adds to the hint). Selection samples
/// every connected client, whether parked or away, so the order in which clients come back never biases it.
///
/// Invariants: `pollRate > 0`; a hint never exceeds `maxDelay`, which the coordinator keeps below the liveness
/// timeout, so a client that follows its hints is never counted as gone.
public struct PaceSteering: Sendable, Equatable {
    /// Re-polls per second the coordinator aims for across all its idle clients. Default 200.
    public var pollRate: Double
    /// The longest wait a hint may ask for.
    public var maxDelay: Duration

    public init(pollRate: Double = 200, maxDelay: Duration) {
        precondition(pollRate > 0 && pollRate.isFinite, "the poll rate must be positive")
        precondition(maxDelay >= .zero)
        self.pollRate = pollRate
        self.maxDelay = maxDelay
    }

    /// The widest hint for `connected` clients, in whole seconds (what `Retry-After` carries).
    public func spreadSeconds(connected: Int) -> Int {
        let spread = min(Double(max(connected, 0)) / pollRate, maxDelay.seconds)
        return Int(spread.rounded(.down))
    }

    /// When an idle client should poll again, in whole seconds from now; 0 means at once.
    public func retryAfterSeconds(connected: Int, using generator: inout some RandomNumberGenerator) -> Int {
        let spread = spreadSeconds(connected: connected)
        return spread == 0 ? 0 : Int.random(in: 0...spread, using: &generator)
    }
}
