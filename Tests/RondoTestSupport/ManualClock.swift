import Coordinator
import Synchronization

/// A coordinator clock whose time moves only when a test calls `advance(by:)`, so tests about rates, deadlines
/// and once-a-second housekeeping say how much time passed instead of sleeping through it.
///
/// `sleep(for:)` still waits in real time (the driver's tick loop keeps turning, and shutdown still works);
/// what each tick sees as "now" is only what the test set. Tests that need a tick at a given time call the
/// driver's `tick()` themselves after advancing.
public final class ManualClock: CoordinatorClock {
    private let origin = ContinuousClock.now
    private let offset = Mutex(Duration.zero)

    public init() {}

    public var now: ContinuousClock.Instant { origin.advanced(by: offset.withLock { $0 }) }

    /// Moves time forward.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "time does not go backwards")
        offset.withLock { $0 += duration }
    }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
