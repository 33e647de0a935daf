import ArgumentParser
import FederationCore
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure Rondo's hot paths.",
        subcommands: [
            AggregateBench.self, CheckpointBench.self, CohortBench.self, MetricsBench.self, OverheadBench.self,
            RoundBench.self, StoreBench.self, StrategyBench.self,
        ])
}

/// Streaming FedAvg throughput: fold `clients` updates of `parameters` values of one dtype and finalise the
/// average (written back in that dtype).
struct AggregateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregate", abstract: "Time streaming FedAvg over synthetic updates of one dtype.")

    @Option(help: "Updates folded per run.") var clients = 10
    @Option(help: "Parameters per update.") var parameters = 1_000_000
    @Option(help: "Element dtype: F32, F16, BF16, F64, I64, … (safetensors spelling).") var dtype = "F32"
    @Option(help: "Timed runs (the median is reported).") var runs = 7
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        guard let elementType = TensorDType(rawValue: dtype), elementType.isAggregated else {
            throw ValidationError("--dtype must be an aggregated safetensors dtype (F16, BF16, F32, F64, I64, …)")
        }
        var generator = SeededRandomNumberGenerator(seed: 42)
        // Random values in [-1, 1] (integers in [-100, 100]), written in the dtype through the same rounding
        // the average uses.
        let scale = elementType.isFloatingPoint ? 1.0 : 100.0
        func tensor(_ values: [Double]) -> Tensor {
            Tensor(shape: [values.count], dtype: elementType, converting: values)
        }
        let layout = ModelWeights(["w": tensor([Double](repeating: 0, count: parameters))])
        let updates = (0..<clients).map { _ in
            ModelWeights([
                "w": tensor((0..<parameters).map { _ in Double.random(in: -1...1, using: &generator) * scale })
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
            let result = try average.average()!
            let end = clock.now
            checksum += result.tensors[0].tensor.floatValues[parameters / 2]
            foldTimes.append(seconds(start.duration(to: folded)))
            totalTimes.append(seconds(start.duration(to: end)))
        }
        let fold = Array(foldTimes.dropFirst()).median
        let total = Array(totalTimes.dropFirst()).median
        let bytes = Double(clients * parameters * elementType.byteWidth)
        if json {
            print(
                #"{"dtype": "\#(dtype)", "clients": \#(clients), "parameters": \#(parameters), "runs": \#(runs), "fold_seconds_median": \#(fold), "total_seconds_median": \#(total), "fold_gb_per_s": \#(bytes / fold / 1e9), "total_gb_per_s": \#(bytes / total / 1e9)}"#
            )
        } else {
            print(
                "streaming FedAvg: \(clients) updates x \(parameters) \(dtype) (\(Int(bytes / 1e6)) MB of update data), median of \(runs) runs"
            )
            print(String(format: "  fold only:        %.4f s  %.2f GB/s", fold, bytes / fold / 1e9))
            print(String(format: "  fold + average:   %.4f s  %.2f GB/s", total, bytes / total / 1e9))
            print("  (checksum \(checksum))")
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        duration.seconds
    }

}
