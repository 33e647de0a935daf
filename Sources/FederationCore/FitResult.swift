/// A client's answer to a fit task: updated weights, the number of examples behind them, and training metrics.
///
/// On the wire it is one safetensors file whose `__metadata__` holds `num_examples` (a decimal string) and
/// `metrics` (a JSON object of numbers, as a string), so the result is readable by any safetensors tool.
public struct FitResult: Sendable, Equatable {
    public var weights: ModelWeights
    public var numExamples: Int
    public var metrics: [String: Double]

    public init(weights: ModelWeights, numExamples: Int, metrics: [String: Double] = [:]) {
        self.weights = weights
        self.numExamples = numExamples
        self.metrics = metrics
    }

    /// Reads a fit result from a decoded safetensors file.
    /// - Throws: `UpdateRejection(.malformed)` when `num_examples` is missing or not a positive integer, or
    ///   `metrics` is not a JSON object of numbers.
    public init(file: SafeTensorsFile) throws(UpdateRejection) {
        let (count, metrics) = try Self.read(metadata: file.metadata)
        self.init(weights: file.weights, numExamples: count, metrics: metrics)
    }

    /// The example count and training metrics a result's `__metadata__` carries (the same rules for a result
    /// decoded whole and one checked while it streams in).
    /// - Throws: `UpdateRejection(.malformed)` as `init(file:)` does.
    public static func read(metadata: [String: String]) throws(UpdateRejection) -> (
        numExamples: Int, metrics: [String: Double]
    ) {
        guard let text = metadata[WireProtocol.numExamplesKey] else {
            throw UpdateRejection(.malformed, "__metadata__ lacks \"\(WireProtocol.numExamplesKey)\"")
        }
        guard let count = Int(text), count > 0 else {
            throw UpdateRejection(.malformed, "num_examples \"\(text)\" is not a positive integer")
        }
        var metrics: [String: Double] = [:]
        if let json = metadata[WireProtocol.metricsKey] {
            let parsed: JSONValue
            do {
                parsed = try JSONParser.parse(json)
            } catch {
                throw UpdateRejection(.malformed, "metrics is not valid JSON: \(error)")
            }
            guard let members = parsed.objectMembers else {
                throw UpdateRejection(.malformed, "metrics is not a JSON object")
            }
            for (name, value) in members {
                guard let number = value.numberValue else {
                    throw UpdateRejection(.malformed, "metric \"\(name)\" is not a number")
                }
                metrics[name] = number
            }
        }
        return (count, metrics)
    }

    /// The safetensors file for this result.
    public var file: SafeTensorsFile {
        var metadata = [WireProtocol.numExamplesKey: String(numExamples)]
        if !metrics.isEmpty {
            metadata[WireProtocol.metricsKey] = JSONValue.object(
                metrics.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) }
            ).serialized()
        }
        return SafeTensorsFile(weights: weights, metadata: metadata)
    }
}
