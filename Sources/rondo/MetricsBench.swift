import ArgumentParser
import Coordinator
import DemoFederation
import FederationCore
import FederationTelemetry
import Foundation
import Logging
import ModelManager

/// Time to produce `/metrics` (process stats + exposition) with many registered clients.
struct MetricsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Time rendering /metrics with many registered clients.")

    @Option(help: "Clients to register first.") var clients = 10_000
    @Option(help: "Timed renders (the median is reported).") var runs = 21
    @Option(help: "Scratch directory; removed afterwards.") var directory = "./rondo-bench-metrics"

    func run() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let factory = CatalogueMetricsFactory()
        let metrics = CoordinatorMetrics(factory: factory)
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        // No round may start: the bench measures an idle coordinator with a large registry.
        // Registration limits are lifted: the bench enrols its whole registry at once.
        let configuration = CoordinatorConfiguration(
            rounds: RoundConfiguration(selection: SelectionPolicy(minFitClients: 2, minAvailableClients: clients + 1)),
            limits: .init(maxClients: clients, registrationsPerSecond: Double(clients)))
        let driver = try await RoundDriver(
            configuration: configuration, store: store, initialWeights: SoftmaxRegression().weights, logger: logger,
            metrics: metrics)
        for index in 0..<clients { _ = try await driver.register(name: "bench-\(index)") }
        let status = await driver.status()
        metrics.clients(
            connected: status.clientsConnected, registered: status.clientsRegistered, required: status.clientsRequired,
            quorum: status.quorum)
        let clock = ContinuousClock()
        var times: [Double] = []
        var size = 0
        for _ in 0..<runs {
            let start = clock.now
            metrics.refreshProcessStats()
            size = factory.render().count
            times.append(start.duration(to: clock.now).seconds)
        }
        times.sort()
        printLine(
            String(
                format: "/metrics with %d registered clients: median %.3f ms, %d bytes, %d series lines", clients,
                times[times.count / 2] * 1000, size,
                String(decoding: factory.render(), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
                    .count))
    }
}
