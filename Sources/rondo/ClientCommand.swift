import ArgumentParser
import Coordinator
import DemoFederation
import FederationClient
import Foundation
import FederationTelemetry
import ServiceLifecycle

struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Run one demo site in its own process, training on its share of the digits data set.")

    @Option(help: "The coordinator's base URL.") var coordinator = "http://127.0.0.1:8470"
    @Option(help: "Which share to hold, as i/n (0-based i of n sites).") var partition: String
    @Option(help: "Dirichlet concentration; must match the other sites.") var alpha = 0.5
    @Option(help: "Seed of the data split; must match the other sites.") var seed: UInt64 = 7
    @Option(help: "PEM file of CA certificates to trust for HTTPS.") var caFile: String?
    @Option(help: "The federation's enrolment token (env RONDO_ENROLMENT_TOKEN).") var enrolmentToken: String?
    @Option(help: "Extra milliseconds each task takes (a slow site, for drills).") var taskDelayMs = 0
    @Option(
        help: ArgumentHelp(
            "File holding this site's identity key (env RONDO_CLIENT_IDENTITY_KEY): a restarted site registers "
                + "as the same client."))
    var identityKeyFile: String?
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let parts = partition.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] >= 1, (0..<parts[1]).contains(parts[0]) else {
            throw ValidationError("--partition takes i/n with 0 <= i < n")
        }
        let logger = common.bootstrapLogging(defaultLevel: .info)
        let data = DemoData(dataset: try DigitsDataset.bundled(), clients: parts[1], alpha: alpha, seed: seed)
        let share = data.clients[parts[0]]
        let tracing = makeTracing(
            serviceName: "rondo-client", metricsFactory: CatalogueMetricsFactory(), logger: logger)
        let client = FederatedClient(
            configuration: .init(
                coordinatorURL: coordinator, name: "site-\(parts[0])-of-\(parts[1])", caFile: caFile,
                enrolmentToken: enrolmentToken ?? ProcessInfo.processInfo.environment["RONDO_ENROLMENT_TOKEN"],
                identityKey: try identityKeyFile.map { try SecretFile.readConfigured($0) }
                    ?? ProcessInfo.processInfo.environment["RONDO_CLIENT_IDENTITY_KEY"]),
            trainer: DigitsTrainer(
                train: share.train, test: share.test, seed: seed &+ UInt64(parts[0]),
                taskDelay: .milliseconds(taskDelayMs)),
            logger: logger, tracer: tracing.tracer)
        logger.info(
            "demo site starting",
            metadata: [
                "partition": "\(partition)", "train_examples": "\(share.train.count)", "coordinator": "\(coordinator)",
            ])
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: ([tracing.exporter].compactMap { $0 } as [any Service] + [client]).map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
