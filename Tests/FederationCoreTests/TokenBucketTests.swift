import FederationCore
import Testing

@Suite struct TokenBucketTests {
    @Test func allowsABurstThenRefillsAtTheRate() {
        var bucket = TokenBucket<TestInstant>(rate: 2, burst: 3)
        let start = TestInstant.zero
        for _ in 0..<3 { #expect(bucket.take(now: start) == nil) }
        let wait = bucket.take(now: start)
        #expect(wait == .milliseconds(500), "one token comes back after 1/rate seconds")
        #expect(bucket.take(now: start.advanced(by: .milliseconds(499))) != nil)
        #expect(bucket.take(now: start.advanced(by: .milliseconds(500))) == nil)
        // A long quiet spell refills to the burst, never beyond.
        let later = start.advanced(by: .seconds(60))
        for _ in 0..<3 { #expect(bucket.take(now: later) == nil) }
        #expect(bucket.take(now: later) != nil)
    }
}
