import FederationCore
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
