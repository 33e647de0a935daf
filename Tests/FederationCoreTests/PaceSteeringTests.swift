import FederationCore
import Testing

/// Pace steering's hints: spread so re-polls arrive at the chosen rate, never beyond the cap, zero for a small
/// federation.
@Suite struct PaceSteeringTests {
    @Test func aSmallFederationNeverWaits() {
        let pace = PaceSteering(pollRate: 200, maxDelay: .seconds(10))
        var generator = SeededRandomNumberGenerator(seed: 1)
        #expect(pace.spreadSeconds(connected: 199) == 0)
        #expect((0..<100).allSatisfy { _ in pace.retryAfterSeconds(connected: 150, using: &generator) == 0 })
    }

    @Test func hintsSpreadReconnectionsOverConnectedOverRate() {
        let pace = PaceSteering(pollRate: 200, maxDelay: .seconds(10))
        var generator = SeededRandomNumberGenerator(seed: 2)
        #expect(pace.spreadSeconds(connected: 1_000) == 5)
        // 1,000 clients told when to come back: about 200 per second over 0...5 s (six whole-second slots).
        var perSecond = [Int](repeating: 0, count: 6)
        for _ in 0..<1_000 { perSecond[pace.retryAfterSeconds(connected: 1_000, using: &generator)] += 1 }
        #expect(perSecond.allSatisfy { (120...220).contains($0) }, "\(perSecond)")
    }

    @Test func hintsStopAtTheCapHoweverManyAreConnected() {
        let pace = PaceSteering(pollRate: 200, maxDelay: .seconds(10))
        var generator = SeededRandomNumberGenerator(seed: 3)
        #expect(pace.spreadSeconds(connected: 1_000_000) == 10)
        let hints = (0..<2_000).map { _ in pace.retryAfterSeconds(connected: 1_000_000, using: &generator) }
        #expect(hints.max() == 10 && hints.min() == 0)
    }
}
