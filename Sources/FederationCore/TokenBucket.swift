/// A token-bucket rate limit: `burst` requests at once, refilled at `rate` per second.
///
/// Pure: time is passed in, so the server drives it with its clock and tests with made-up instants.
public struct TokenBucket<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    /// Tokens added per second.
    public let rate: Double
    /// Most tokens the bucket holds (the largest burst allowed).
    public let burst: Double
    private var tokens: Double
    private var updated: Instant?

    /// - Precondition: `rate > 0` and `burst >= 1`.
    public init(rate: Double, burst: Double) {
        precondition(rate > 0 && burst >= 1, "a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    /// Takes one token if there is one.
    /// - Returns: nil when the request may go ahead, else how long until a token is available.
    public mutating func take(now: Instant) -> Duration? {
        if let updated, updated < now {
            tokens = min(burst, tokens + updated.duration(to: now).seconds * rate)
        }
        updated = max(updated ?? now, now)
        guard tokens >= 1 else { return .seconds((1 - tokens) / rate) }
        tokens -= 1
        return nil
    }

    /// Gives back a token taken for a request that turned out not to count against the limit (up to `burst`).
    public mutating func refund() {
        tokens = min(burst, tokens + 1)
    }
}
