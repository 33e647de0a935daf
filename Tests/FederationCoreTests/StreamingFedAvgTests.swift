@testable import FederationCore
import Testing

@Suite struct StreamingFedAvgTests {
    static func model(_ a: [Float], _ b: [Float]) -> ModelWeights {
        ModelWeights(["a": Tensor(shape: [a.count], values: a), "b": Tensor(shape: [1, b.count], values: b)])
    }

    static let updates: [(ModelWeights, Int)] = [
        (model([1, 2], [10]), 1),
        (model([3, 6], [20]), 3),
        (model([-2, 0], [0]), 4),
    ]

    @Test func matchesHandComputedWeightedMean() throws {
        var average = StreamingFedAvg(layout: Self.updates[0].0)
        for (weights, examples) in Self.updates { average.fold(weights, numExamples: examples) }
        let result = try #require(try average.average())
        // a: (1·1 + 3·3 + (−2)·4) / 8 = 2/8, (2·1 + 6·3 + 0·4) / 8 = 20/8; b: (10 + 60 + 0) / 8
        #expect(result["a"]?.floatValues == [0.25, 2.5])
        #expect(result["b"]?.floatValues == [8.75])
        #expect(result["b"]?.shape == [1, 1])
        #expect(average.count == 3)
        #expect(average.totalExamples == 8)
    }

    @Test func emptyAverageIsNil() throws {
        #expect(try StreamingFedAvg(layout: Self.updates[0].0).average() == nil)
    }

    static let permutations: [[Int]] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]

    @Test(arguments: permutations)
    func resultDoesNotDependOnArrivalOrder(_ order: [Int]) throws {
        var generator = SeededRandomNumberGenerator(seed: 99)
        let random = (0..<3).map { _ in
            (
                Self.model(
                    (0..<1000).map { _ in Float.random(in: -5...5, using: &generator) },
                    [Float.random(in: 0...1, using: &generator)]),
                Int.random(in: 1...500, using: &generator)
            )
        }
        var reference = StreamingFedAvg(layout: random[0].0)
        for (weights, examples) in random { reference.fold(weights, numExamples: examples) }
        var permuted = StreamingFedAvg(layout: random[0].0)
        for index in order { permuted.fold(random[index].0, numExamples: random[index].1) }
        #expect(try #require(try permuted.average()) == (try #require(try reference.average())))
    }
}

/// Sums are kept in blocks so the average can free them as it is written; blocks must not change a bit of it.
@Suite struct BlockedSumsTests {
    /// Hands a tensor over in chunks of `elements` elements, so chunks straddle the blocks.
    struct ChunkedPayload: UpdatePayload {
        let weights: ModelWeights
        let elements: Int

        func forEachChunk(ofTensor index: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
            let tensor = weights.tensors[index].tensor
            tensor.withLittleEndianBytes { raw in
                let step = elements * tensor.dtype.byteWidth
                for start in stride(from: 0, to: raw.count, by: step) {
                    body(UnsafeRawBufferPointer(rebasing: raw[start..<min(start + step, raw.count)]))
                }
            }
        }
    }

    static func model(_ seed: Float) -> ModelWeights {
        let values = (0..<11).map { Double($0) * 0.37 + Double(seed) }
        return ModelWeights([
            "f32": Tensor(shape: [11], values: values.map { Float($0) }),
            "bf16": Tensor(shape: [11], dtype: .bfloat16, converting: values),
            "i32": Tensor(shape: [11], dtype: .int32, converting: values.map { $0 * 100 }),
            "one": Tensor(shape: [1], values: [seed]),
            "none": .zeros(shape: [0]),
        ])
    }

    @Test(arguments: [1, 3, 4, 11, 64])
    func blocksOfAnySizeGiveTheSameAverage(blockElements: Int) throws {
        let updates = [(Self.model(1), 3), (Self.model(-2.5), 5), (Self.model(7), 1)]
        var reference = StreamingFedAvg(layout: updates[0].0)
        var blocked = StreamingFedAvg(layout: updates[0].0, weightCap: nil, blockElements: blockElements)
        for (weights, examples) in updates {
            reference.fold(weights, numExamples: examples)
            try blocked.fold(payload: ChunkedPayload(weights: weights, elements: 3), numExamples: examples)
        }
        let expected = try #require(try reference.takeAverage())
        #expect(try blocked.average() == expected, "average() leaves the sums in place")
        #expect(try blocked.takeAverage() == expected)
        // Hand-checked element: f32[4] = (3·(1.48+1) + 5·(1.48−2.5) + 1·(1.48+7)) / 9.
        let f32 = try #require(expected["f32"]?.floatValues[4])
        #expect(abs(Double(f32) - (3 * 2.48 + 5 * -1.02 + 8.48) / 9) < 1e-6)
    }

    /// Under a weight cap the heaviest updates are kept aside and added inside `takeAverage`, into blocks
    /// that are being freed as the average is written: the result must not change either.
    @Test(arguments: [1, 4, 7])
    func cappedAveragesAreTheSameWithBlocks(blockElements: Int) throws {
        let updates = [(Self.model(1), 30), (Self.model(-2.5), 5), (Self.model(7), 1), (Self.model(0.5), 2)]
        let cap = WeightCap(maxShare: 0.5)
        var reference = StreamingFedAvg(layout: updates[0].0, weightCap: cap)
        var blocked = StreamingFedAvg(layout: updates[0].0, weightCap: cap, blockElements: blockElements)
        for (weights, examples) in updates {
            reference.fold(weights, numExamples: examples)
            try blocked.fold(payload: ChunkedPayload(weights: weights, elements: 2), numExamples: examples)
        }
        #expect(try blocked.takeAverage() == (try reference.takeAverage()))
    }
}
