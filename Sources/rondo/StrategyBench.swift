import ArgumentParser
import FederationCore
import Foundation

/// What each aggregation strategy costs beside FedAvg: the whole aggregation of a round (fold every update,
/// take the average, the strategy's server step; for DP-FedAvg clip, fold at unit weight and noise the sums),
/// strategies interleaved within each run so the machine's load falls on all alike.
struct StrategyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategies", abstract: "Time each aggregation strategy's round against FedAvg's.")

    @Option(help: "Updates per round.") var clients = 10
    @Option(help: "Parameters per update (F32).") var parameters = 1_000_000
    @Option(help: "Timed runs per strategy (the median is reported).") var runs = 7
    @Flag(help: "Print one JSON object instead of text.") var json = false

    /// The strategies compared; FedAvgM with momentum, so it keeps a state.
    static func strategies() throws -> [AggregationStrategy] {
        [
            .fedAvg, try AggregationStrategy(name: "fedavgm", options: ["server_momentum": "0.9"]),
            try AggregationStrategy(name: "fedadam"), try AggregationStrategy(name: "fedyogi"),
            try AggregationStrategy(name: "fedadagrad"),
        ]
    }

    func run() async throws {
        guard clients >= 1, parameters >= 1, runs >= 1 else { throw ValidationError("all counts must be positive") }
        var generator = SeededRandomNumberGenerator(seed: 42)
        let base = ModelWeights([
            "w": Tensor(
                shape: [parameters], values: (0..<parameters).map { _ in Float.random(in: -1...1, using: &generator) })
        ])
        let updates = (0..<clients).map { _ in
            ModelWeights([
                "w": Tensor(
                    shape: [parameters],
                    values: base["w"]!.floatValues.map { $0 + Float.random(in: -0.01...0.01, using: &generator) })
            ])
        }
        let strategies = try Self.strategies()
        var states: [ServerOptimizerState?] = Array(repeating: nil, count: strategies.count)
        var times: [[Double]] = Array(repeating: [], count: strategies.count + 1)
        // DP-FedAvg clips at the median distance, so half the updates are scaled; the validator measures each
        // update's norm for every strategy, so it is not part of the timed work.
        let norms = updates.map { update in
            zip(update["w"]!.floatValues, base["w"]!.floatValues).reduce(0.0) {
                $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1)
            }.squareRoot()
        }
        let clip = norms.median
        var checksum: Float = 0
        let clock = ContinuousClock()
        for run in 0...runs {  // run 0 warms caches and is discarded
            for (index, strategy) in strategies.enumerated() {
                let start = clock.now
                var average = StreamingFedAvg(layout: base)
                for (client, update) in updates.enumerated() { average.fold(update, numExamples: 100 + client) }
                let averaged = try average.takeAverage()!
                let (next, state) = try ServerOptimizer.step(
                    strategy, base: base, average: averaged, state: states[index])
                let elapsed = start.duration(to: clock.now).seconds
                states[index] = state
                checksum += next["w"]!.floatValues[parameters / 2]
                if run > 0 { times[index].append(elapsed) }
            }
            let start = clock.now
            var average = StreamingFedAvg(layout: base)
            for (update, norm) in zip(updates, norms) {
                try average.fold(payload: update, numExamples: 1, shrink: min(1, clip / norm))
            }
            var noise = NoiseGenerator.system
            let noised = average.takePrivateAverage(denominator: clients, sumNoise: clip, using: &noise)!
            if run > 0 { times[strategies.count].append(start.duration(to: clock.now).seconds) }
            checksum += noised["w"]!.floatValues[parameters / 2]
        }
        let medians = times.map(\.median)
        let names = strategies.map(\.description) + ["dp-fedavg(noise_multiplier=1, clip=median norm)"]
        if json {
            let entries = zip(names, medians).map {
                #"{"strategy": "\#($0.0)", "seconds_median": \#($0.1), "ratio_to_fedavg": \#($0.1 / medians[0])}"#
            }
            print(
                #"{"clients": \#(clients), "parameters": \#(parameters), "runs": \#(runs), "strategies": [\#(entries.joined(separator: ", "))]}"#
            )
            return
        }
        print("a round's aggregation, \(clients) updates x \(parameters) F32, median of \(runs) interleaved runs")
        for (name, median) in zip(names, medians) {
            let name = name.padding(toLength: 58, withPad: " ", startingAt: 0)
            print("  \(name) \(String(format: "%8.1f ms  %5.2fx", median * 1000, median / medians[0]))")
        }
        print("  (checksum \(checksum))")
    }
}
