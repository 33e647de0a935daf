/// Where the coordinator reads the time and waits: the system's continuous clock in production, a manual clock
/// in tests (so a test about a one-second rate limit advances time instead of sleeping through it).
///
/// Instants stay `ContinuousClock.Instant` either way: a manual clock hands out instants it advanced itself.
public protocol CoordinatorClock: Sendable {
    /// The current instant.
    var now: ContinuousClock.Instant { get }
    /// Waits until `duration` has passed on this clock.
    /// - Throws: `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
}

/// The system's continuous clock (monotonic; does not jump with the wall clock).
public struct SystemClock: CoordinatorClock {
    public init() {}
    public var now: ContinuousClock.Instant { ContinuousClock.now }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}
