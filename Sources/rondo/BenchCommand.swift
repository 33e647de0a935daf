import ArgumentParser
import FederationCore
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure Rondo's hot paths.",
        subcommands: [AggregateBench.self, CheckpointBench.self, MetricsBench.self])
}

/// Streaming FedAvg throughput: fold `clients` updates of `parameters` float32 values and finalise the average.
struct AggregateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregate", abstract: "Time streaming FedAvg over synthetic float32 updates.")

    @Option(help: "Updates folded per run.") var clients = 10
    @Option(help: "float32 parameters per update.") var parameters = 1_000_000
    @Option(help: "Timed runs (the median is reported).") var runs = 7
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        var generator = SeededRandomNumberGenerator(seed: 42)
        let layout = ModelWeights(["w": Tensor.zeros(shape: [parameters])])
        let updates = (0..<clients).map { _ in
            ModelWeights([
                "w": Tensor(
                    shape: [parameters],
                    values: (0..<parameters).map { _ in Float.random(in: -1...1, using: &generator) })
            ])
        }
        let clock = ContinuousClock()
        var foldTimes: [Double] = []
        var totalTimes: [Double] = []
        var checksum: Float = 0
        for _ in 0..<(runs + 1) {  // the first run warms caches and is discarded
            var average = StreamingFedAvg(layout: layout)
            let start = clock.now
            for (index, update) in updates.enumerated() { average.fold(update, numExamples: 100 + index) }
            let folded = clock.now
            let result = average.average()!
            let end = clock.now
            checksum += result.tensors[0].tensor.floatValues[parameters / 2]
            foldTimes.append(seconds(start.duration(to: folded)))
            totalTimes.append(seconds(start.duration(to: end)))
        }
        let fold = median(Array(foldTimes.dropFirst()))
        let total = median(Array(totalTimes.dropFirst()))
        let bytes = Double(clients * parameters * 4)
        if json {
            print(
                #"{"clients": \#(clients), "parameters": \#(parameters), "runs": \#(runs), "fold_seconds_median": \#(fold), "total_seconds_median": \#(total), "fold_gb_per_s": \#(bytes / fold / 1e9), "total_gb_per_s": \#(bytes / total / 1e9)}"#
            )
        } else {
            print(
                "streaming FedAvg: \(clients) updates x \(parameters) float32 (\(Int(bytes / 1e6)) MB of update data), median of \(runs) runs"
            )
            print(String(format: "  fold only:        %.4f s  %.2f GB/s", fold, bytes / fold / 1e9))
            print(String(format: "  fold + average:   %.4f s  %.2f GB/s", total, bytes / total / 1e9))
            print("  (checksum \(checksum))")
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        duration.seconds
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
