@testable import Coordinator
import FederationCore
import Foundation
import ModelManager
import RondoTestSupport
import Testing

/// Registrations that arrive together share store transactions, and each is on disk when it is answered.
@Suite struct EnrolmentGroupCommitTests {
    @Test func aBurstOfRegistrationsSharesCommitsAndEachIsStoredWhenAnswered() async throws {
        var configuration = RunningCoordinator.configuration(clients: 1000)
        configuration.limits.maxClients = 1000
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let driver = coordinator.driver
            let store = driver.store
            let stored = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let answer = try await driver.register(name: "burst-\(index)")
                        // Answered only once its row is there.
                        let rows = try await store.clients()
                        return (answer.clientID, rows.contains { $0.clientID == answer.clientID })
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            #expect(stored.count == 200)
            #expect(stored.values.allSatisfy { $0 }, "every answered registration was already stored")
            let commits = await driver.enrolmentCommits
            #expect(commits >= 1 && commits < 100, "200 registrations took \(commits) commits")
        }
    }

    /// The store writes a batch all or nothing; the group commit then retries its rows one by one, so only the
    /// bad one fails.
    @Test func aBatchWithABadRowIsWrittenNoneThenEachOnItsOwn() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        try await store.clientRegistered(id: "c-taken", name: "first", tokenSHA256: "t0")
        let batch: [ClientEnrolment] = [
            .registered(id: "c-new", name: "new", tokenSHA256: "t1", identitySHA256: nil),
            .registered(id: "c-taken", name: "again", tokenSHA256: "t2", identitySHA256: nil),
        ]
        await #expect(throws: (any Error).self) { try await store.clientsEnrolled(batch) }
        #expect(try await store.clients().map(\.clientID) == ["c-taken"], "nothing of the failed batch was written")
        try await store.clientsEnrolled([batch[0]])
        #expect(Set(try await store.clients().map(\.clientID)) == ["c-taken", "c-new"])
    }
}
