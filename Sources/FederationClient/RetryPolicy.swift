/// Exponential backoff with full jitter for calls that may succeed on a later try.
///
/// The n-th retry waits a uniformly random time in [0, min(maxDelay, initialDelay × 2ⁿ)], so clients that lost
/// the coordinator at the same moment do not all come back at the same moment.
public struct RetryPolicy: Sendable, Equatable {
    /// Upper bound of the first wait. Default 100 ms.
    public var initialDelay: Duration
    /// Upper bound of any wait. Default 5 s.
    public var maxDelay: Duration
    /// Give up after this many tries; nil tries until the task is cancelled. Default nil.
    public var maxAttempts: Int?

    public init(initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5), maxAttempts: Int? = nil)
    {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
    }

    /// The jittered wait before retry number `attempt` (0-based).
    public func delay(forAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let cap = min(maxDelay, initialDelay * (1 << min(attempt, 20)))
        let milliseconds = Double(cap.components.seconds) * 1000 + Double(cap.components.attoseconds) / 1e15
        return .milliseconds(Int64(Double.random(in: 0...max(milliseconds, 0), using: &generator)))
    }
}
