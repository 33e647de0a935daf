import ArgumentParser
import FederationCore

/// `--strategy NAME` and its `--strategy-option NAME=VALUE` parameters (`rondo serve`, `rondo demo`).
struct StrategyOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Aggregation strategy: fedavg; fedprox (clients add a proximal term); the server optimizers fedavgm, "
                + "fedadam, fedyogi, fedadagrad (on the round's FedAvg average); the robust fedmedian, fedtrimmedavg, "
                + "krum (over every result). "
                + "Parameters default to Flower 1.40's. Recorded with every checkpoint."))
    var strategy = "fedavg"
    @Option(
        help: ArgumentHelp(
            "A strategy parameter as NAME=VALUE, repeatable: eta, beta_1, beta_2, tau (fedadam, fedyogi; fedadagrad "
                + "takes eta and tau); server_learning_rate, server_momentum (fedavgm); proximal_mu (fedprox, "
                + "required); beta (fedtrimmedavg); "
                + "num_malicious_clients, num_clients_to_keep (krum; m > 0 is Multi-Krum)."))
    var strategyOption: [String] = []

    /// The strategy with its parameters.
    /// - Throws: `ValidationError` naming the strategy, option or value that is wrong.
    func resolved() throws -> AggregationStrategy {
        var options: [String: String] = [:]
        for pair in strategyOption {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--strategy-option takes NAME=VALUE, not \(pair)")
            }
            let name = String(pair[..<equals])
            guard options[name] == nil else { throw ValidationError("--strategy-option \(name) is given twice") }
            options[name] = String(pair[pair.index(after: equals)...])
        }
        do {
            return try AggregationStrategy(name: strategy, options: options)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func validate() throws { _ = try resolved() }
}
