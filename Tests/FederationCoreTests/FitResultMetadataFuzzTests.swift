import FederationCore
import Testing

/// A bounded, seeded fuzz of the fit result's metadata (`num_examples`, `metrics`): whatever a client puts
/// there, the result is read or refused as `malformed`, and a round fed the readable ones refuses counts above
/// the federation's limit (`invalid_value`), never traps, and still aggregates.
@Suite struct FitResultMetadataFuzzTests {
    static let weights = ModelWeights(["w": Tensor(shape: [2], values: [1, 2])])

    /// Boundary and hostile values for an integer carried as a decimal string.
    static let exampleCounts: [String] = [
        "0", "1", "-1", "2", "99999999", "100000000", "100000001", "2147483647", "2147483648", "4294967296",
        String(Int.max), String(Int.max - 1), "9223372036854775808", "18446744073709551616", String(Int.min),
        "-9223372036854775809", "1e9", "1.0", " 1", "1 ", "+1", "0x10", "", "١٢", "1\u{0}",
        String(repeating: "9", count: 400),
    ]

    /// Hostile `metrics` JSON.
    static let metricTexts: [String] = [
        "{}", #"{"accuracy":0.5}"#, #"{"a":1e308,"b":-1e308}"#, #"{"a":1e309}"#, #"{"a":NaN}"#, #"{"a":"x"}"#,
        "[]", "null", #"{"a":{"b":1}}"#, String(repeating: "[", count: 10_000), #"{"a":1,"a":2}"#,
        #"{"\u0000":1}"#, "{", "",
    ]

    @Test func everyCombinationIsReadOrRefusedAndTheRoundNeverTraps() throws {
        var refused = 0
        var accepted = 0
        var outOfRange = 0
        for count in Self.exampleCounts {
            for metrics in Self.metricTexts {
                let file = SafeTensorsFile(
                    weights: Self.weights,
                    metadata: [WireProtocol.numExamplesKey: count, WireProtocol.metricsKey: metrics])
                let decoded = try SafeTensorsFile.decode(file.encoded())
                let result: FitResult
                do {
                    result = try FitResult(file: decoded)
                } catch {
                    #expect(error.reason == .malformed, "\(count) / \(metrics): \(error)")
                    refused += 1
                    continue
                }
                #expect(result.numExamples >= 1)
                switch try Self.submit(result) {
                case .accepted: accepted += 1
                case .refused(let reason):
                    #expect(
                        reason == .invalidValue || reason == .nonFinite, "\(count) / \(metrics): \(reason)")
                    outOfRange += 1
                }
            }
        }
        #expect(
            accepted > 0 && refused > 0 && outOfRange > 0,
            "\(accepted) accepted, \(refused) malformed, \(outOfRange) out of range")
    }

    @Test(arguments: [1, 2, 3])
    func randomCountsAndMetricsNeverTrap(seed: UInt64) throws {
        var generator = SeededRandomNumberGenerator(seed: seed)
        for _ in 0..<500 {
            let count: String =
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: String(Int.random(in: Int.min...Int.max, using: &generator))
                case 1: String(Int.random(in: -2...200_000_000, using: &generator))
                default: String(UInt64.random(in: 0...UInt64.max, using: &generator))
                }
            let value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
            let metrics = #"{"m":\#(value.isFinite ? String(value) : "1")}"#
            let file = SafeTensorsFile(
                weights: Self.weights, metadata: [WireProtocol.numExamplesKey: count, WireProtocol.metricsKey: metrics])
            guard let result = try? FitResult(file: try SafeTensorsFile.decode(file.encoded())) else { continue }
            _ = try Self.submit(result)
        }
    }

    enum Outcome: Equatable {
        case accepted
        case refused(UpdateRejection.Reason)
    }

    /// Two clients in one round: `result` first, then an honest one — the order that crashed the coordinator.
    static func submit(_ result: FitResult) throws -> Outcome {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 2, minAvailableClients: 2, fractionEvaluate: 0),
            minFitResults: 1, fitTimeout: .seconds(10))
        var machine = RoundStateMachine<TestInstant>(
            configuration: configuration, model: GlobalModel(version: 1, sha256: "s", weights: weights), seed: 1)
        let ids = [ClientID("a"), ClientID("b")]
        for id in ids { _ = machine.register(id, now: .zero) }
        let tasks = ids.compactMap { machine.takeTask(for: $0, now: .zero) }
        var outcome = Outcome.accepted
        do {
            _ = try machine.fitResult(
                tasks[0].id, client: ids[0], weights: result.weights, numExamples: result.numExamples,
                metrics: result.metrics, now: .zero)
        } catch {
            outcome = .refused(error.reason)
        }
        var actions = try machine.fitResult(
            tasks[1].id, client: ids[1], weights: weights, numExamples: 100_000_000, metrics: ["m": 1], now: .zero)
        if case .refused = outcome {
            // A refused result leaves its task open: the same client may still answer validly.
            actions = try machine.fitResult(
                tasks[0].id, client: ids[0], weights: weights, numExamples: 1, metrics: [:], now: .zero)
        }
        #expect(actions.contains { if case .storeCandidate = $0 { true } else { false } }, "the round still aggregates")
        return outcome
    }
}
