import FederationCore
import Testing

@testable import Coordinator

/// Every parked poll is answered exactly once: by a task, by its deadline, or by a release.
@Suite struct LongPollHubTests {
    actor Box {
        var hub = LongPollHub<String>()
        func park(_ client: ClientID, until deadline: ContinuousClock.Instant) async -> String? {
            await withCheckedContinuation { hub.park(client, until: deadline, $0) }
        }
        func wake(_ client: ClientID, _ value: String) -> Bool { hub.wake(client) { value } }
        func expire(_ now: ContinuousClock.Instant) -> [ClientID] { hub.expire(now: now) }
        func release(_ client: ClientID?) { hub.release(client) }
        func counts(_ client: ClientID) -> (Int, Int, Set<ClientID>) {
            (hub.parkedCount, hub.parkedCount(for: client), hub.parkedClients)
        }
    }

    static func waitForParked(_ count: Int, in box: Box) async {
        while await box.counts(ClientID("a")).0 < count { await Task.yield() }
    }

    @Test func wakeExpireAndReleaseEachAnswerOnce() async {
        let box = Box()
        let start = ContinuousClock.now
        let (a, b) = (ClientID("a"), ClientID("b"))
        async let first = box.park(a, until: start.advanced(by: .seconds(10)))
        await Self.waitForParked(1, in: box)
        async let second = box.park(a, until: start.advanced(by: .seconds(1)))
        await Self.waitForParked(2, in: box)
        async let third = box.park(b, until: start.advanced(by: .seconds(10)))
        await Self.waitForParked(3, in: box)
        let counts = await box.counts(a)
        #expect(counts.0 == 3 && counts.1 == 2 && counts.2 == [a, b])

        #expect(await box.expire(start.advanced(by: .seconds(1))) == [a], "only the 1 s poll is due")
        #expect(await second == nil)
        #expect(await box.wake(a, "task-1"))
        #expect(await first == "task-1", "the oldest poll gets the task")
        #expect(await !box.wake(a, "task-2"), "no poll of a's is left")
        await box.release(nil)
        #expect(await third == nil)
        #expect(await box.counts(a).0 == 0)
    }
}
