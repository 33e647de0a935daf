/// One accepted result kept whole for an aggregator that needs every result at once.
public struct CollectedUpdate: Sendable {
    public var client: ClientID
    public var numExamples: Int
    /// Its tensors: in memory, or the coordinator's spool file for an upload (read block by block).
    public var payload: any UpdatePayload

    public init(client: ClientID, numExamples: Int, payload: any UpdatePayload) {
        self.client = client
        self.numExamples = numExamples
        self.payload = payload
    }
}

/// What a robust aggregator did with the round's results, for the round record, an event, the round's span and
/// the exclusion counter (never a metric label: client ids are unbounded).
public struct AggregationOutcome: Sendable, Equatable {
    /// Clients whose results were left out whole (Krum, Multi-Krum), sorted.
    public var excluded: [ClientID]
    /// For the trimmed mean: each client's share of coordinates where its value was cut.
    public var trimmedShares: [ClientID: Double]

    public init(excluded: [ClientID] = [], trimmedShares: [ClientID: Double] = [:]) {
        self.excluded = excluded
        self.trimmedShares = trimmedShares
    }
}

/// Robust aggregation over every result of a round: coordinate-wise median, coordinate-wise trimmed mean, Krum
/// and Multi-Krum, each as Flower 1.40 computes it (`FedMedian`, `FedTrimmedAvg`, `Krum`).
///
/// Results are read block by block (`blockElements` coordinates of one tensor from every result at a time),
/// so memory is O(results × block + model) whatever the model's size: with 64 Ki-element blocks and 100 results,
/// 50 MiB of blocks beside the aggregate. Krum reads every result twice (distances, then the kept ones).
public enum RobustAggregator {
    /// Coordinates per block.
    static let blockElements = 1 << 16

    /// The aggregate of `updates` under `strategy`.
    /// - Precondition: `strategy.name.needsEveryUpdate`, `updates` is not empty, every payload has `layout`.
    /// - Throws: when a payload cannot be read back (a spool file lost to a disk error).
    public static func aggregate(
        _ strategy: AggregationStrategy, layout: ModelWeights, updates: [CollectedUpdate]
    ) throws -> (weights: ModelWeights, outcome: AggregationOutcome) {
        precondition(!updates.isEmpty, "no result to aggregate")
        switch strategy.name {
        case .fedMedian:
            return (try coordinateWise(layout, updates) { median($0) }, AggregationOutcome())
        case .fedTrimmedAvg:
            let cut = Int(strategy[.beta] * Double(updates.count))
            var trimmed = [Int](repeating: 0, count: updates.count)
            var coordinates = 0
            let weights = try coordinateWise(layout, updates) { column in
                coordinates += 1
                return trimmedMean(column, cut: cut, trimmed: &trimmed)
            }
            let shares = Dictionary(
                uniqueKeysWithValues: zip(updates, trimmed).map {
                    ($0.0.client, coordinates == 0 ? 0 : Double($0.1) / Double(coordinates))
                })
            return (weights, AggregationOutcome(trimmedShares: shares))
        case .krum:
            let kept = try krumSelection(
                layout, updates, malicious: Int(strategy[.numMaliciousClients]),
                keep: Int(strategy[.numClientsToKeep]))
            let keptSet = Set(kept)
            let excluded = updates.indices.filter { !keptSet.contains($0) }.map { updates[$0].client }
                .sorted { $0.rawValue < $1.rawValue }
            let chosen = kept.map { updates[$0] }
            let total = chosen.reduce(0.0) { $0 + Double($1.numExamples) }
            let weights = try coordinateWise(layout, chosen) { column in
                // Multi-Krum averages the kept results by examples (Krum keeps one: its own values).
                var sum = 0.0
                for (value, update) in zip(column, chosen) { sum += value * Double(update.numExamples) }
                return sum / total
            }
            return (weights, AggregationOutcome(excluded: excluded))
        default:
            preconditionFailure("\(strategy.name.rawValue) folds results as they arrive")
        }
    }

    /// Applies `combine` to every coordinate's values across `updates` (in `updates` order), block by block.
    static func coordinateWise(
        _ layout: ModelWeights, _ updates: [CollectedUpdate], _ combine: ([Double]) -> Double
    ) throws -> ModelWeights {
        var tensors: [NamedTensor] = []
        for (index, named) in layout.tensors.enumerated() {
            let count = named.tensor.elementCount
            var out = [Double](repeating: 0, count: count)
            var column = [Double](repeating: 0, count: updates.count)
            try forEachBlock(of: index, dtype: named.tensor.dtype, count: count, updates) { start, rows in
                for offset in rows[0].indices {
                    for row in rows.indices { column[row] = rows[row][offset] }
                    out[start + offset] = combine(column)
                }
            }
            tensors.append(
                NamedTensor(
                    name: named.name,
                    tensor: Tensor(shape: named.tensor.shape, dtype: named.tensor.dtype, converting: out)))
        }
        return ModelWeights(tensors)
    }

    /// Reads tensor `index` of every update block by block: `body` gets the block's first coordinate and one row
    /// of values per update.
    static func forEachBlock(
        of index: Int, dtype: TensorDType, count: Int, _ updates: [CollectedUpdate],
        _ body: (Int, [[Double]]) -> Void
    ) throws {
        var start = 0
        while start < count {
            let length = min(blockElements, count - start)
            var rows = [[Double]](repeating: [Double](repeating: 0, count: length), count: updates.count)
            for (row, update) in updates.enumerated() {
                var filled = 0
                try rows[row].withUnsafeMutableBufferPointer { target in
                    try update.payload.forEachChunk(
                        ofTensor: index, byteRange: (start * dtype.byteWidth)..<((start + length) * dtype.byteWidth)
                    ) { chunk in
                        let elements = chunk.count / dtype.byteWidth
                        precondition(filled + elements <= length, "a payload returned more than its block")
                        TensorElements.accumulate(
                            raw: chunk, dtype: dtype, weight: 1, into: target.baseAddress! + filled)
                        filled += elements
                    }
                }
                precondition(filled == length, "a payload's tensor is shorter than the model's")
            }
            body(start, rows)
            start += length
        }
    }

    /// numpy's median: the middle value, or the mean of the two middle ones.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The mean of the values left after cutting `cut` from each end (scipy's `trim_mean`, as Flower uses it);
    /// counts, per update, the coordinates where its value was cut (ties go by update order).
    static func trimmedMean(_ values: [Double], cut: Int, trimmed: inout [Int]) -> Double {
        let order = values.indices.sorted { (values[$0], $0) < (values[$1], $1) }
        let kept = order[cut..<(order.count - cut)]
        for index in order[..<cut] { trimmed[index] += 1 }
        for index in order[(order.count - cut)...] { trimmed[index] += 1 }
        return kept.reduce(0.0) { $0 + values[$1] } / Double(kept.count)
    }

    /// The indices Krum keeps: scores are the summed squared distances to the max(1, n − f − 2) nearest other
    /// results; Krum keeps the lowest score, Multi-Krum the min(`keep`, n − f) lowest.
    static func krumSelection(_ layout: ModelWeights, _ updates: [CollectedUpdate], malicious: Int, keep: Int) throws
        -> [Int]
    {
        let n = updates.count
        var distances = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for (index, named) in layout.tensors.enumerated() {
            try forEachBlock(of: index, dtype: named.tensor.dtype, count: named.tensor.elementCount, updates) {
                _, rows in
                for i in 0..<n {
                    for j in (i + 1)..<n {
                        var sum = 0.0
                        for k in rows[i].indices {
                            let difference = rows[i][k] - rows[j][k]
                            sum += difference * difference
                        }
                        distances[i][j] += sum
                        distances[j][i] += sum
                    }
                }
            }
        }
        let nearest = max(1, n - malicious - 2)
        let scores = (0..<n).map { i in
            // Sorted with itself (distance 0) first, which is then skipped, as Flower does.
            let order = (0..<n).sorted {
                (distances[i][$0], $0 == i ? 0 : 1, $0) < (distances[i][$1], $1 == i ? 0 : 1, $1)
            }
            return order.dropFirst().prefix(nearest).reduce(0.0) { $0 + distances[i][$1] }
        }
        let ranked = (0..<n).sorted { (scores[$0], $0) < (scores[$1], $1) }
        // Multi-Krum keeps at most n − f (at least one): a round that closed with fewer results than the
        // configured m never averages the f it must suspect. (Flower slices past the start instead and keeps
        // only the best one once m > n.)
        return keep > 0 ? Array(ranked.prefix(min(keep, max(1, n - malicious)))) : [ranked[0]]
    }
}
