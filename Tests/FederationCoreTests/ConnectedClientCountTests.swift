import FederationCore
import Testing

/// `connectedClientCount` is kept in step by hand at every change of a client's `connected` flag; a random walk
/// over every event that changes one checks it against the full count after each step.
@Suite struct ConnectedClientCountTests {
    typealias Machine = RoundStateMachine<TestInstant>

    @Test(arguments: [1, 2, 3] as [UInt64]) func theCountMatchesAWalkOverTheClients(seed: UInt64) {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(
                fractionFit: 0.5, minFitClients: 2, minAvailableClients: 6, fractionEvaluate: 0),
            minFitResults: 1, fitTimeout: .seconds(5), livenessTimeout: .seconds(3))
        var machine = Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: seed)
        var generator = SeededRandomNumberGenerator(seed: seed)
        let ids = (0..<12).map { ClientID("c\($0)") }
        var now = TestInstant.zero
        var parked: Set<ClientID> = []
        var steps: [String: Int] = [:]
        for _ in 0..<600 {
            let id = ids.randomElement(using: &generator)!
            switch Int.random(in: 0..<7, using: &generator) {
            case 0 where !machine.isRegistered(id):
                _ = machine.register(id, now: now)
                steps["register", default: 0] += 1
            case 1:
                machine.restore(id, lastSeen: now)
                steps["restore", default: 0] += 1
            case 2:
                _ = machine.touch(id, now: now)
                steps["touch", default: 0] += 1
            case 3:
                _ = machine.leave(id, now: now)
                parked.remove(id)
                steps["leave", default: 0] += 1
            case 4:
                if !parked.insert(id).inserted { parked.remove(id) }
            case 5:
                if machine.evict(id) { steps["evict", default: 0] += 1 }
            default:
                now = now.advanced(by: .milliseconds(Int64.random(in: 100...2500, using: &generator)))
                _ = machine.tick(now: now, parked: parked)
                steps["tick", default: 0] += 1
            }
            #expect(machine.connectedClientCount == machine.connectedClients.count)
        }
        #expect(steps.values.allSatisfy { $0 > 10 }, "every kind of step ran: \(steps)")
        #expect(machine.roundsStarted > 0, "rounds started along the walk")
    }

    @Test func aConnectedClientStaysASilentOneIsEvictedAndComesBackAsReturning() throws {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 2, minAvailableClients: 2, fractionEvaluate: 0),
            minFitResults: 2, fitTimeout: .seconds(60), livenessTimeout: .seconds(3))
        var machine = Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: 1)
        let (busy, quiet) = (ClientID("busy"), ClientID("quiet"))
        _ = machine.register(quiet, now: .zero)
        let connectedEvicted = machine.evict(quiet)
        #expect(!connectedEvicted, "a connected client stays")
        let started = machine.register(busy, now: .zero)
        #expect(started.contains { if case .roundStarted = $0 { true } else { false } })
        let task = machine.takeTask(for: busy, now: .zero)
        #expect(task != nil)
        let busyEvicted = machine.evict(busy)
        #expect(!busyEvicted, "a connected client with a task stays")
        machine.restore(ClientID("never-heard"), lastSeen: .zero)
        let neverHeard = machine.evict(ClientID("never-heard"))
        #expect(neverHeard, "restored and not heard from: nothing to keep")

        // Both go silent; the tick ends their tasks as timeouts, so neither holds one any more.
        let silent = machine.tick(now: .seconds(5))
        #expect(silent.count { if case .clientWentSilent = $0 { true } else { false } } == 2)
        let evicted = [machine.evict(quiet), machine.evict(busy)]
        #expect(evicted == [true, true])
        #expect(machine.registeredClientCount == 0 && machine.connectedClientCount == 0)
        let twice = machine.evict(quiet)
        #expect(!twice, "evicting twice is harmless")

        machine.restore(quiet, lastSeen: .seconds(2))
        let back = machine.touch(quiet, now: .seconds(9))
        #expect(back.contains { if case .clientReturned(quiet, .seconds(2)) = $0 { true } else { false } })
        #expect(machine.connectedClientCount == 1)
    }
}
