import DemoFederation
import FederationCore
import Foundation
import Logging
import RondoTestSupport
import Synchronization
import Testing

@Suite struct DemoDataTests {
    @Test func bundledDatasetLoads() throws {
        let data = try DigitsDataset.bundled()
        #expect(data.count == 1797)
        #expect(data.features.count == 1797 * 64)
        #expect(Set(data.labels) == Set(0..<10))
        #expect(data.features.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func dirichletPartitionCoversEveryExampleOnceAndSkewsLabels() {
        let labels = (0..<1000).map { $0 % 10 }
        var generator = SeededRandomNumberGenerator(seed: 7)
        let parts = DirichletPartitioner(alpha: 0.1).partition(labels: labels, clients: 5, using: &generator)
        #expect(parts.flatMap { $0 }.sorted() == Array(0..<1000))
        #expect(parts.allSatisfy { $0.count >= 10 })
        // With α = 0.1 most clients are dominated by few classes: the largest class share is far above 10 %.
        let dominantShares = parts.map { part -> Double in
            let counts = Dictionary(grouping: part.map { labels[$0] }, by: { $0 }).mapValues(\.count)
            return Double(counts.values.max() ?? 0) / Double(part.count)
        }
        #expect(dominantShares.filter { $0 > 0.3 }.count >= 3, "shares \(dominantShares)")
        var again = SeededRandomNumberGenerator(seed: 7)
        #expect(DirichletPartitioner(alpha: 0.1).partition(labels: labels, clients: 5, using: &again) == parts)
    }

    @Test func heldOutSliceIsDisjointFromTraining() throws {
        let data = DemoData(dataset: try DigitsDataset.bundled(), clients: 4, alpha: 0.5, seed: 3)
        #expect(data.heldOut.count == 359)
        #expect(data.clients.map(\.train.count).reduce(0, +) + data.heldOut.count == 1797)
        #expect(data.clients.map(\.test.count).reduce(0, +) == data.heldOut.count)
    }

    @Test func softmaxRegressionLearnsCentrally() throws {
        let data = DemoData(dataset: try DigitsDataset.bundled(), clients: 1, alpha: 100, seed: 1)
        var model = SoftmaxRegression()
        let before = model.evaluate(on: data.heldOut)
        var generator = SeededRandomNumberGenerator(seed: 1)
        model.train(on: data.clients[0].train, epochs: 5, learningRate: 0.1, batchSize: 16, using: &generator)
        let after = model.evaluate(on: data.heldOut)
        #expect(abs(before.loss - log(10.0)) < 1e-6, "an all-zero model predicts uniformly")
        #expect(after.accuracy > 0.9 && after.loss < before.loss)
        #expect(try SoftmaxRegression(weights: model.weights).weight == model.weight)
    }
}

/// Whole demo federations, one at a time: each runs up to ten sites on the same two cores as every other test,
/// and a site starved by a second demo beside it must not look vanished.
@Suite(.serialized) struct DemoRuns {}

extension DemoRuns {
    @Suite struct LocalFederationDemoTests {
        /// Runs the demo in a temporary data directory; returns its summary and printed lines.
        static func runDemo(_ configure: (inout DemoOptions) -> Void) async throws -> (DemoSummary, [String]) {
            var options = DemoOptions()
            options.port = 0
            options.dataDirectory = RunningCoordinator.temporaryDirectory()
            // Generous: tests run in parallel on two cores, and a starved but healthy site must not look vanished.
            options.livenessTimeout = .seconds(6)
            configure(&options)
            defer { try? FileManager.default.removeItem(atPath: options.dataDirectory) }
            var logger = Logger(label: "demo-test")
            logger.logLevel = .critical
            let lines = Mutex<[String]>([])
            let summary = try await LocalFederationDemo.run(
                options: options, dataset: try DigitsDataset.bundled(), logger: logger
            ) { line in
                lines.withLock { $0.append(line) }
            }
            return (summary, lines.withLock { $0 })
        }

        @Test func shortFederationImprovesAccuracy() async throws {
            let (summary, printed) = try await Self.runDemo {
                $0.clients = 3
                $0.rounds = 3
                $0.seed = 11
                // Under a loaded test run a busy site can miss the demo's 2 s liveness timeout while it trains.
                $0.livenessTimeout = .seconds(6)
            }
            #expect(printed.filter { $0.hasPrefix("round ") }.count == 3, "\(printed)")
            #expect(summary.rounds == 3 && summary.committedRounds == 3 && summary.finalModelVersion == 4)
            // An all-zero model is at chance (10 %); three rounds of FedAvg must do far better, and the first
            // round's federated accuracy must be below the last.
            let first = try #require(printed.first { $0.hasPrefix("round   1/3") })
            let firstAccuracy = try #require(
                Double(first.split(separator: " ").drop { $0 != "acc" }.dropFirst().first ?? ""))
            #expect(summary.finalAccuracy > 0.7, "final accuracy \(summary.finalAccuracy)")
            #expect(try #require(summary.finalFederatedAccuracy) > firstAccuracy)
        }

        @Test func demoCompletesRoundsDespiteVanishingClients() async throws {
            let (summary, printed) = try await Self.runDemo {
                $0.clients = 4
                $0.rounds = 2
                $0.dropoutRate = 0.3
                $0.seed = 5
                $0.livenessTimeout = .seconds(6)
                $0.guardMaxRegression = nil
            }
            // The sites' dice are seeded: with seed 5, one site vanishes in round 1 and two in round 2, and both
            // rounds still commit on the quorum of two.
            let rounds = printed.filter { $0.hasPrefix("round ") }
            #expect(rounds.count == 2)
            #expect(rounds.allSatisfy { !$0.contains("dropouts 0") }, "\(rounds)")
            #expect(summary.committedRounds == 2, "\(rounds)")
        }
    }
}
