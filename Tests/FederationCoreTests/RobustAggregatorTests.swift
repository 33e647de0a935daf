import FederationCore
import Testing

/// The robust aggregators against straightforward per-coordinate computations, across block boundaries and
/// through payloads that hand their bytes over in odd chunks (as spool files do). The comparison with Flower's
/// own strategies is in `Clients/python/tests/test_strategies.py`.
@Suite struct RobustAggregatorTests {
    /// A payload that serves its tensors in 1,000-byte chunks through the protocol's default ranged read.
    struct ChunkedPayload: UpdatePayload {
        var weights: ModelWeights
        func forEachChunk(ofTensor index: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
            weights.tensors[index].tensor.withLittleEndianBytes { raw in
                var start = 0
                while start < raw.count {
                    let end = min(start + 1_000, raw.count)
                    body(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                    start = end
                }
            }
        }
    }

    static let count = 70_000  // more than one 65,536-element block

    static func updates(_ clients: Int, outlier: Bool = false) -> ([CollectedUpdate], [[Double]]) {
        var generator = SeededRandomNumberGenerator(seed: 11)
        var values: [[Double]] = []
        var updates: [CollectedUpdate] = []
        for client in 0..<clients {
            var row = (0..<count).map { _ in Double(Float.random(in: -1...1, using: &generator)) }
            if outlier, client == clients - 1 { row = row.map { $0 * 3 + 5 } }
            let weights = ModelWeights(["w": Tensor(shape: [count], values: row.map { Float($0) })])
            let payload: any UpdatePayload = client % 2 == 0 ? weights : ChunkedPayload(weights: weights)
            updates.append(CollectedUpdate(client: ClientID("c\(client)"), numExamples: client + 1, payload: payload))
            values.append(row.map { Double(Float($0)) })
        }
        return (updates, values)
    }

    static let layout = ModelWeights(["w": Tensor(shape: [count], values: [Float](repeating: 0, count: count))])

    static func expectClose(_ got: ModelWeights, _ want: [Double]) {
        let values = got["w"]!.doubleValues
        #expect(values.count == want.count)
        let worst = zip(values, want).map { abs($0 - Double(Float($1))) / max(abs($1), 1e-6) }.max() ?? 0
        #expect(worst <= 1e-6, "largest relative error \(worst)")
    }

    @Test func theMedianIsTakenPerCoordinateAcrossBlocks() throws {
        for clients in [4, 5] {
            let (updates, values) = Self.updates(clients)
            let (weights, outcome) = try RobustAggregator.aggregate(
                try AggregationStrategy(name: "fedmedian"), layout: Self.layout, updates: updates)
            let want = (0..<Self.count).map { i -> Double in
                let column = values.map { $0[i] }.sorted()
                return clients % 2 == 1 ? column[clients / 2] : (column[clients / 2 - 1] + column[clients / 2]) / 2
            }
            Self.expectClose(weights, want)
            #expect(outcome == AggregationOutcome())
        }
    }

    @Test func theTrimmedMeanCutsTheOutlierEverywhereAndSaysSo() throws {
        let (updates, values) = Self.updates(5, outlier: true)
        let (weights, outcome) = try RobustAggregator.aggregate(
            try AggregationStrategy(name: "fedtrimmedavg", options: ["beta": "0.2"]), layout: Self.layout,
            updates: updates)
        let want = (0..<Self.count).map { i -> Double in
            let column = values.map { $0[i] }.sorted()
            return column[1..<4].reduce(0, +) / 3
        }
        Self.expectClose(weights, want)
        #expect(outcome.trimmedShares[ClientID("c4")] == 1, "the outlier is the largest value everywhere")
        let total = outcome.trimmedShares.values.reduce(0, +)
        #expect(abs(total - 2) < 1e-9, "two values cut per coordinate: \(total)")
    }

    @Test func krumKeepsTheBestScoredResultAndMultiKrumAveragesTheKeptOnes() throws {
        let (updates, values) = Self.updates(5, outlier: true)
        let (single, singleOutcome) = try RobustAggregator.aggregate(
            try AggregationStrategy(name: "krum", options: ["num_malicious_clients": "1"]), layout: Self.layout,
            updates: updates)
        #expect(singleOutcome.excluded.count == 4 && singleOutcome.excluded.contains(ClientID("c4")))
        let kept = try #require((0..<5).first { !singleOutcome.excluded.contains(ClientID("c\($0)")) })
        Self.expectClose(single, values[kept])

        let (multi, multiOutcome) = try RobustAggregator.aggregate(
            try AggregationStrategy(name: "krum", options: ["num_malicious_clients": "1", "num_clients_to_keep": "3"]),
            layout: Self.layout, updates: updates)
        #expect(multiOutcome.excluded.count == 2 && multiOutcome.excluded.contains(ClientID("c4")))
        let keptClients = (0..<5).filter { !multiOutcome.excluded.contains(ClientID("c\($0)")) }
        let weight = keptClients.reduce(0.0) { $0 + Double($1 + 1) }
        let want = (0..<Self.count).map { i in
            keptClients.reduce(0.0) { $0 + values[$1][i] * Double($1 + 1) } / weight
        }
        Self.expectClose(multi, want)
    }

    @Test func krumScoresFollowTheNearestNeighboursRule() throws {
        // Four points on a line and one far away; f = 1 scores each over its 5 − 1 − 2 = 2 nearest others.
        let points: [Float] = [0, 1, 3, 4, 100]
        let updates = points.enumerated().map {
            CollectedUpdate(
                client: ClientID("p\($0.offset)"), numExamples: 1,
                payload: ModelWeights(["w": Tensor(shape: [1], values: [$0.element])]))
        }
        let layout = ModelWeights(["w": Tensor(shape: [1], values: [0])])
        // Scores: p0 = 1 + 9 = 10, p1 = 1 + 4 = 5, p2 = 1 + 4 = 5, p3 = 1 + 9 = 10, p4 huge: p1 wins the tie.
        let (weights, outcome) = try RobustAggregator.aggregate(
            try AggregationStrategy(name: "krum", options: ["num_malicious_clients": "1"]), layout: layout,
            updates: updates)
        #expect(weights["w"]!.doubleValues == [1])
        #expect(outcome.excluded == ["p0", "p2", "p3", "p4"].map(ClientID.init))
    }

    @Test func robustStrategiesCollectAndTheOthersFold() throws {
        let krum = try AggregationStrategy(name: "krum", options: ["num_malicious_clients": "1"])
        var aggregate = RoundAggregate(strategy: krum, layout: Self.layout, weightCap: nil)
        guard case .collecting = aggregate else {
            Issue.record("a robust strategy collects")
            return
        }
        #expect(try aggregate.take(krum) == nil, "nothing added yet")
        var fedAvg = RoundAggregate(strategy: .fedAvg, layout: Self.layout, weightCap: nil)
        guard case .streaming = fedAvg else {
            Issue.record("FedAvg folds as results arrive")
            return
        }
        #expect(try fedAvg.take(.fedAvg) == nil)
    }

    @Test func multiKrumNeverAveragesMoreThanTheResultsItMayTrust() throws {
        // A round that closed with 4 results under m = 6, f = 1: at most n − f = 3 are kept.
        let (updates, _) = Self.updates(4, outlier: true)
        let strategy = try AggregationStrategy(
            name: "krum", options: ["num_malicious_clients": "1", "num_clients_to_keep": "6"])
        let (_, outcome) = try RobustAggregator.aggregate(strategy, layout: Self.layout, updates: updates)
        #expect(outcome.excluded == [ClientID("c3")], "the outlier is the one left out: \(outcome.excluded)")
    }

    @Test(
        arguments: [
            ("krum", ["num_malicious_clients": "1.5"]), ("krum", ["num_clients_to_keep": "-1"]),
            ("fedtrimmedavg", ["beta": "0.5"]), ("fedmedian", ["beta": "0.1"]),
        ] as [(String, [String: String])])
    func robustParametersAreChecked(name: String, options: [String: String]) {
        #expect(throws: StrategyConfigurationError.self) { try AggregationStrategy(name: name, options: options) }
    }
}
