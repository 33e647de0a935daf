import ArgumentParser
import DemoFederation
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a local federation: a coordinator and simulated sites learning the digits data set.")

    @Option(help: "Number of simulated sites.") var clients = 10
    @Option(help: "Number of rounds.") var rounds = 30
    @Option(help: "Dirichlet concentration of the non-IID label split (smaller: more skewed).") var alpha = 0.5
    @Option(help: "Seed for data split, selection and training.") var seed: UInt64 = 7
    @Option(help: "Chance that a site vanishes mid-round after receiving a fit task.") var dropoutRate = 0.0
    @Option(help: "Write a JSON summary here.") var summaryJSON: String?
    @Flag(help: "Keep the coordinator serving after the last round, until SIGINT/SIGTERM.") var keepServing = false
    @Option(help: "Largest accepted drop in evaluation accuracy below the best model before a round is rejected.")
    var guardMaxRegression = 0.05
    @Flag(help: "Turn the regression guard off.") var noGuard = false
    @Option(help: "Share of the sites that attack, in [0, 0.5) (rounded to whole sites, chosen by the seed).")
    var maliciousRate = 0.0
    @Option(help: "What malicious sites send: sign-flip, gaussian-noise or little-is-enough.")
    var attack: DemoAttack = .signFlip
    @OptionGroup var server: ServerOptions
    @OptionGroup var common: CommonOptions
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var privacy: PrivacyOptions

    func validate() throws {
        guard clients >= 2 else { throw ValidationError("--clients must be at least 2") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard alpha > 0 else { throw ValidationError("--alpha must be positive") }
        guard (0..<1).contains(dropoutRate) else { throw ValidationError("--dropout-rate must be in [0, 1)") }
        guard (0..<0.5).contains(maliciousRate) else { throw ValidationError("--malicious-rate must be in [0, 0.5)") }
        if let goal = selection.goal, goal.minimum > clients {
            throw ValidationError(
                "--goal-count's minimum (\(goal.minimum)) is more than the demo's \(clients) sites: no round would open"
            )
        }
    }

    func run() async throws {
        let logger = common.bootstrapLogging(defaultLevel: .warning)
        let lock = try await server.prepareDataDirectory()
        defer { withExtendedLifetime(lock) {} }
        var options = DemoOptions()
        options.clients = clients
        options.rounds = rounds
        options.alpha = alpha
        options.seed = seed
        options.dropoutRate = dropoutRate
        options.host = server.resolvedHost
        options.port = server.resolvedPort
        options.keepServing = keepServing
        options.summaryJSONPath = summaryJSON
        options.dataDirectory = server.dataDir
        options.guardMaxRegression = noGuard ? nil : guardMaxRegression
        options.goal = selection.goal
        options.pollRate = selection.resolvedPollRate
        options.strategy = try strategy.resolved()
        options.privacy = try privacy.resolved()
        guard options.privacy?.epsilonBudget == nil else {
            // The demo runs its --rounds; a budget would finish the federation first and leave it waiting.
            throw ValidationError("rondo demo takes no --dp-epsilon-budget; size --rounds with `rondo privacy epsilon`")
        }
        do {
            try options.coordinatorConfiguration.rounds.checkPrivacy()
        } catch {
            throw ValidationError("\(error)")
        }
        options.maliciousRate = maliciousRate
        options.attack = attack
        let metricsFactory = bootstrapMetrics()
        let tracing = makeTracing(serviceName: "rondo-demo", metricsFactory: metricsFactory, logger: logger)
        _ = try await LocalFederationDemo.run(
            options: options, dataset: try DigitsDataset.bundled(), logger: logger, metricsFactory: metricsFactory,
            tracer: tracing.tracer, exporter: tracing.exporter
        ) {
            line in
            printLine(line)
        }
    }
}

extension DemoAttack: ExpressibleByArgument {}
