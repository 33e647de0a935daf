import FederationCore
import Synchronization
import Testing

@testable import Coordinator

/// Every parked poll is answered exactly once: by a task, by its deadline, or by a release.
@Suite struct LongPollHubTests {
    actor Box {
        var hub = LongPollHub<String>()
        func park(
            _ client: ClientID, until deadline: ContinuousClock.Instant, open: (@Sendable () -> Bool)? = nil
        ) async -> String? {
            await withCheckedContinuation { hub.park(client, until: deadline, isConnectionOpen: open, $0) }
        }
        func abandonClosed() { hub.abandonClosed() }
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

    /// Many polls with scattered deadlines, some answered early: each is answered once, none before its deadline,
    /// and an early answer leaves nothing behind for its deadline to end.
    @Test func scatteredDeadlinesEndEachPollOnceAndOnTime() async {
        let box = Box()
        let start = ContinuousClock.now
        var generator = SeededRandomNumberGenerator(seed: 7)
        let deadlines = (0..<200).map { _ in Int.random(in: 1...50, using: &generator) }
        let clients = (0..<200).map { ClientID("p\($0)") }
        await withTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<200 {
                group.addTask {
                    (index, await box.park(clients[index], until: start.advanced(by: .seconds(deadlines[index]))))
                }
            }
            while await box.counts(clients[0]).0 < 200 { await Task.yield() }
            // Every third client gets a task before any deadline.
            for index in stride(from: 0, to: 200, by: 3) { #expect(await box.wake(clients[index], "task")) }
            var endedBySecond: [Int: Set<Int>] = [:]
            for second in 1...50 {
                for client in await box.expire(start.advanced(by: .seconds(second))) {
                    endedBySecond[second, default: []].insert(Int(client.rawValue.dropFirst())!)
                }
            }
            var answers: [Int: String?] = [:]
            for await (index, answer) in group { answers[index] = answer }
            #expect(answers.count == 200)
            for index in 0..<200 {
                let woken = index % 3 == 0
                let answer: String? = answers[index] ?? "unanswered"
                #expect(answer == (woken ? "task" : nil))
                let endings = endedBySecond.filter { $0.value.contains(index) }.map(\.key)
                #expect(endings == (woken ? [] : [deadlines[index]]), "poll \(index) ended at \(endings)")
            }
        }
        #expect(await box.counts(clients[0]).0 == 0)
    }

    /// A poll whose connection closed is answered at the next sweep and does not count as reaching its deadline;
    /// polls on open connections stay parked.
    @Test func closedConnectionsAreAbandonedAtTheSweep() async {
        let box = Box()
        let start = ContinuousClock.now
        let open = Mutex(true)
        let (a, b) = (ClientID("a"), ClientID("b"))
        async let closing = box.park(a, until: start.advanced(by: .seconds(30)), open: { open.withLock { $0 } })
        await Self.waitForParked(1, in: box)
        async let staying = box.park(b, until: start.advanced(by: .seconds(30)), open: { true })
        await Self.waitForParked(2, in: box)
        await box.abandonClosed()
        #expect(await box.counts(a).0 == 2, "both connections are open")
        open.withLock { $0 = false }
        await box.abandonClosed()
        #expect(await closing == nil)
        #expect(await box.counts(a).0 == 1)
        #expect(await box.expire(start.advanced(by: .seconds(30))) == [b], "the abandoned poll's deadline ends nothing")
        #expect(await staying == nil)
    }
}
