import Coordinator
import FederationTelemetry
import FederationCore
import Foundation
import Logging
import ModelManager
import ServiceLifecycle

/// `rondo demo`: a coordinator on 127.0.0.1 and simulated sites in one process, all talking real HTTP.
///
/// Prints one line per round and a summary; the final accuracy is measured centrally on the held-out slice
/// no site trained on.
public enum LocalFederationDemo {
    /// Runs the demo to completion (or, with `keepServing`, until SIGINT/SIGTERM) and returns its summary.
    /// - Parameter output: receives the progress lines (stdout in the CLI).
    public static func run(
        options: DemoOptions, dataset: DigitsDataset, logger: Logger,
        metricsFactory: CatalogueMetricsFactory = CatalogueMetricsFactory(),
        tracer: RondoTracer = RondoTracer(sink: nil), exporter: OTLPHTTPExporter? = nil,
        output: @escaping @Sendable (String) -> Void = { print($0) }
    ) async throws -> DemoSummary {
        let started = ContinuousClock.now
        let data = DemoData(dataset: dataset, clients: options.clients, alpha: options.alpha, seed: options.seed)
        let store = try await CheckpointStore(
            configuration: .init(path: (options.dataDirectory as NSString).appendingPathComponent("rondo.db")))
        let admin = try AdminToken.resolve(configured: nil, directory: options.dataDirectory)
        let enrolment = try AdminToken.resolve(
            configured: nil, directory: options.dataDirectory, fileName: "enrolment-token")
        var configuration = options.coordinatorConfiguration
        configuration.enrolmentToken = enrolment.token
        let server = try await CoordinatorServer(
            configuration: configuration, store: store, adminToken: admin.token,
            initialWeights: SoftmaxRegression().weights, logger: logger, metricsFactory: metricsFactory,
            buildVersion: RondoBuild.version, buildRevision: RondoBuild.revision, tracer: tracer)
        let reports = await server.driver.roundReports()
        // Rounds continue numbering from earlier runs on the same data directory.
        let lastRound = await server.driver.status().round
        let summary = SummaryBox()

        let monitor = Monitor(
            options: options, driver: server.driver, reports: reports, heldOut: data.heldOut, started: started,
            output: output, summary: summary, port: { await server.port() },
            lastRound: lastRound)
        let malicious = Set(options.maliciousSites)
        let board = CollusionBoard(members: malicious.count)
        let sites = data.clients.enumerated().map { index, share in
            DemoClientService(
                index: index, share: share, seed: options.seed, dropoutRate: options.dropoutRate, logger: logger,
                tracer: tracer, enrolmentToken: enrolment.token,
                malicious: malicious.contains(index)
                    ? DemoSiteTrainer.MaliciousPlan(
                        attack: options.attack, board: board, sites: options.clients, malicious: malicious.count)
                    : nil
            ) {
                "http://\(options.host):\(await server.port())"
            }
        }
        // The exporter comes first so it is shut down last and flushes the final round's spans.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] =
            ([exporter].compactMap { $0 } + server.services)
            .map { .init(service: $0) }
        services += sites.map { .init(service: $0) }
        services.append(.init(service: monitor, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        output("checkpoints in \(store.configuration.path); admin token in \(admin.file ?? "the configuration")")
        output(
            "rondo demo: \(options.clients) clients, \(options.rounds) rounds, alpha \(options.alpha), seed \(options.seed), dropout rate \(options.dropoutRate), strategy \(options.strategy)"
        )
        if !malicious.isEmpty {
            output(
                "malicious sites (\(options.attack.rawValue)): \(malicious.sorted().map { "demo-site-\($0)" }.joined(separator: ", "))"
            )
        }
        try await group.run()
        guard let result = summary.value else { throw DatasetError(message: "the demo stopped before its last round") }
        return result
    }

    /// Holds the summary the monitor computes, for `run` to return after the group stops.
    final class SummaryBox: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: DemoSummary?
        var value: DemoSummary? {
            get { lock.withLock { stored } }
            set { lock.withLock { stored = newValue } }
        }
    }

    /// Prints round progress, computes the summary after the last round, then ends the demo (or keeps the
    /// coordinator serving until a signal).
    struct Monitor: Service {
        let options: DemoOptions
        let driver: RoundDriver
        let reports: AsyncStream<RoundDriver.Report>
        let heldOut: DigitsDataset
        let started: ContinuousClock.Instant
        let output: @Sendable (String) -> Void
        let summary: SummaryBox
        let port: @Sendable () async -> Int
        let lastRound: Int

        func run() async throws {
            await cancelWhenGracefulShutdown {
                output("coordinator listening on http://\(options.host):\(await port())")
                var committed = 0
                var failed = 0
                var lastFederatedAccuracy: Double?
                for await report in reports {
                    output(Self.line(report, of: lastRound + options.rounds))
                    switch report.outcome {
                    case .committed: committed += 1
                    case .failed: failed += 1
                    }
                    lastFederatedAccuracy = report.evaluation?.metrics["accuracy"] ?? lastFederatedAccuracy
                    if committed + failed >= options.rounds { break }
                }
                let model = await driver.currentModel
                guard let regression = try? SoftmaxRegression(weights: model.weights) else { return }
                let (loss, accuracy) = regression.evaluate(on: heldOut)
                let duration = started.duration(to: .now)
                let result = DemoSummary(
                    rounds: committed + failed, committedRounds: committed, failedRounds: failed,
                    finalAccuracy: accuracy, finalLoss: loss, finalFederatedAccuracy: lastFederatedAccuracy,
                    finalModelVersion: model.version,
                    durationSeconds: duration.seconds)
                summary.value = result
                output(
                    String(
                        format:
                            "summary: %d rounds (%d committed, %d failed), held-out accuracy %.4f, loss %.4f, model v%d, %.1f s",
                        result.rounds, committed, failed, accuracy, loss, model.version, result.durationSeconds))
                if let path = options.summaryJSONPath {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    let written = (try? encoder.encode(result)).map {
                        FileManager.default.createFile(atPath: path, contents: $0)
                    }
                    if written != true { output("error: could not write the summary to \(path)") }
                }
                if options.keepServing {
                    output("rounds done; the coordinator keeps serving until SIGINT or SIGTERM")
                    try? await gracefulShutdown()
                }
            }
        }

        static func line(_ report: RoundDriver.Report, of total: Int) -> String {
            let seconds = report.duration.seconds
            let evaluation =
                report.evaluation.map {
                    String(format: "eval acc %.4f  loss %.4f", $0.metrics["accuracy"] ?? .nan, $0.loss)
                } ?? "eval -"
            let outcome: String
            switch report.outcome {
            case .committed: outcome = "committed v\(report.resultVersion ?? 0)"
            case .failed(let failure): outcome = "FAILED \(failure.code.rawValue)"
            }
            let counts = String(
                format: "round %3d/%d  answered %2d/%-2d  dropouts %d", report.round, total, report.accepted,
                report.selected, report.fitDropoutCount)
            return "\(counts)  \(evaluation)  \(String(format: "%.2fs", seconds))  \(outcome)"
        }
    }
}
