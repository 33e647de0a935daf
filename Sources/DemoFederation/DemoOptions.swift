import Coordinator
import FederationCore

/// Settings of `rondo demo`.
public struct DemoOptions: Sendable {
    public var clients = 10
    public var rounds = 30
    public var alpha = 0.5
    public var seed: UInt64 = 7
    /// Chance that a client vanishes (stops without a word) after receiving a fit task.
    public var dropoutRate = 0.0
    public var host = "127.0.0.1"
    public var port = 8470
    public var keepServing = false
    public var summaryJSONPath: String?
    public var localEpochs = 2
    public var learningRate = 0.1
    public var batchSize = 16
    /// Where the checkpoint database and admin token live. Default `./rondo-data`.
    public var dataDirectory = "./rondo-data"
    /// How long a silent site counts as connected; vanished sites are noticed after this. Default 2 s.
    public var livenessTimeout: Duration = .seconds(2)
    /// The regression guard's tolerated accuracy drop; nil turns the guard off. Default 0.05.
    public var guardMaxRegression: Double? = 0.05
    /// Goal-count selection in place of "every client in every round"; the quorum is capped at its minimum.
    /// Default nil.
    public var goal: SelectionGoal?
    /// Pace steering's poll rate (`CoordinatorConfiguration.pollRate`). Default 200.
    public var pollRate: Double? = 200
    /// The aggregation strategy. Default FedAvg.
    public var strategy: AggregationStrategy = .fedAvg
    /// Central differential privacy (DP-FedAvg); nil (the default) runs without.
    public var privacy: DifferentialPrivacy?
    /// Share of the sites that attack (rounded to a whole number of sites, chosen by the seed). Default 0.
    public var maliciousRate = 0.0
    /// What the malicious sites send. Default sign flip.
    public var attack: DemoAttack = .signFlip

    /// The indices of the malicious sites: `maliciousRate` of `clients`, rounded, picked by the seed.
    public var maliciousSites: [Int] {
        let count = min(clients, max(0, Int((maliciousRate * Double(clients)).rounded())))
        var generator = SeededRandomNumberGenerator(seed: seed &+ 0xA77AC4)
        return Array((0..<clients).shuffled(using: &generator).prefix(count)).sorted()
    }

    public init() {}

    /// The coordinator settings the demo runs with: every client in every round, a quorum of 30 %, and
    /// short timeouts so vanished clients are noticed within `livenessTimeout`.
    public var coordinatorConfiguration: CoordinatorConfiguration {
        var minFit = min(clients, max(2, Int((Double(clients) * 0.3).rounded(.up))))
        if let goal { minFit = min(minFit, goal.minimum) }
        var rounds = RoundConfiguration(
            selection: SelectionPolicy(
                fractionFit: 1.0, minFitClients: minFit, minAvailableClients: max(clients, 2),
                fractionEvaluate: 1.0, minEvaluateClients: 1, goal: goal),
            minFitResults: minFit,
            fitTimeout: .seconds(20),
            evaluateTimeout: .seconds(10),
            livenessTimeout: livenessTimeout,
            maxRounds: self.rounds,
            fitConfig: [
                "local_epochs": String(localEpochs), "learning_rate": String(learningRate),
                "batch_size": String(batchSize),
            ],
            regressionGuard: guardMaxRegression.map { RegressionGuard(metric: "accuracy", maxRegression: $0) },
            strategy: strategy)
        rounds.privacy = privacy
        return CoordinatorConfiguration(
            host: host, port: port, rounds: rounds, seed: seed, heartbeatInterval: .milliseconds(500),
            maxLongPoll: .seconds(30), pollRate: pollRate, tickInterval: .milliseconds(50))
    }
}
