@testable import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// DP-FedAvg through the coordinator: the ledger row stored with the candidate, the gauges, `/v1/status`, and
/// the budget refusal recorded as an event and kept across a restart.
@Suite struct DifferentialPrivacyCoordinatorTests {
    @Test func theBudgetStopsTrainingAndARestartRemembersIt() async throws {
        let afterOne = RDPAccountant().composing(samplingRate: 1, noiseMultiplier: 2).epsilon(delta: 1e-5)
        let afterTwo = RDPAccountant().composing(samplingRate: 1, noiseMultiplier: 2, rounds: 2).epsilon(delta: 1e-5)
        var configuration = RunningCoordinator.configuration()
        configuration.rounds.privacy = DifferentialPrivacy(
            noiseMultiplier: 2, clipping: .fixed(norm: 1), epsilonBudget: (afterOne + afterTwo) / 2)
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let first = try await RunningCoordinator(configuration: configuration, in: directory)
        do {
            let client = try await first.register("site")
            let task = try await first.nextTask(client)
            let answer = try await first.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType, body: NormClippingRoundTests.weights(all: 3))
            #expect(answer.status == 202, "\(answer.text)")
            let status = try await first.waitForStatus { $0.phase == .finished }
            #expect(status.committedRounds == 1 && status.round == 1, "round 2 would pass the budget")

            let ledger = try await first.driver.store.privacyLedger()
            #expect(
                ledger == [
                    PrivacySpend(
                        round: 1, samplingRate: 1, noiseMultiplier: 2, clipNorm: 1, nextClipNorm: 1, results: 1,
                        unclipped: 0)
                ])
            let epsilon = try #require(try await first.metricValue("rondo_privacy_epsilon"))
            #expect(abs(epsilon - afterOne) < 1e-9)
            #expect(try await first.metricValue("rondo_privacy_budget_reached") == 1)
            #expect(try await first.metricValue("rondo_privacy_clip_norm") == 1)
            #expect(try await first.metricValue("rondo_updates_clipped_total") == 1, "Δ of norm √54 was clipped")
            let events = try await first.driver.store.events(kind: .privacyBudgetReached)
            #expect(events.count == 1)
            let record = try #require(try await first.driver.store.checkpoint(version: status.modelVersion))
            let privacyRecord = try #require(record.strategy?.privacy, "the checkpoint records its round's privacy")
            #expect(
                privacyRecord.noiseMultiplier == 2 && privacyRecord.clipNorm == 1 && privacyRecord.samplingRate == 1)
            #expect(abs((privacyRecord.epsilon ?? 0) - afterOne) < 1e-9)

            let view = try await first.request("GET", "/v1/status", token: RunningCoordinator.adminToken)
            let privacy = try #require(try JSONDecoder().decode(StatusView.self, from: Data(view.body)).privacy)
            #expect(privacy.budgetReached && privacy.rounds == 1 && privacy.clipping == .fixed)
            #expect(abs((privacy.epsilon ?? 0) - afterOne) < 1e-9)
        } catch {
            await first.stop()
            throw error
        }
        await first.stop()

        // The ledger is in the store: a restart neither resets epsilon nor starts round 2. It starts finished,
        // before any client connects.
        let second = try await RunningCoordinator(configuration: configuration, in: directory)
        do {
            let status = try await second.status()
            #expect(status.phase == .finished && status.round == 1 && status.committedRounds == 0)
            #expect(try await second.metricValue("rondo_privacy_budget_reached") == 1)
            let client = try await second.register("site")
            let epsilon = try #require(try await second.metricValue("rondo_privacy_epsilon"))
            #expect(abs(epsilon - afterOne) < 1e-9)
            let poll = try await second.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=0", token: client.token)
            #expect(poll.status != 200, "no task after the budget: \(poll.status)")
        } catch {
            await second.stop()
            throw error
        }
        await second.stop()
    }
}
