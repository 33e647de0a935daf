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
            switch Int.random(in: 0..<6, using: &generator) {
            case 0 where !machine.isRegistered(id):
                _ = machine.register(id, now: now)
                steps["register", default: 0] += 1
            case 1:
                machine.restore(id, now: now)
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
}
