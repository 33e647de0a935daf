import FederationCore
import Testing

/// StreamingFedAvg under a weight cap against the capped weighted mean computed directly.
@Suite struct CappedFedAvgTests {
    static func model(_ values: [Float]) -> ModelWeights {
        ModelWeights(["w": Tensor(shape: [values.count], values: values)])
    }

    static func directMean(_ updates: [([Float], Int)], cap: WeightCap) -> [Double] {
        let weights = cap.apply(to: updates.map { Double($0.1) })
        let total = weights.reduce(0, +)
        return (0..<updates[0].0.count).map { index in
            zip(updates, weights).reduce(0.0) { $0 + Double($1.0.0[index]) * $1.1 } / total
        }
    }

    @Test(arguments: [0.2, 0.34, 0.5])
    func matchesTheCappedMeanInAnyArrivalOrder(share: Double) throws {
        var generator = SeededRandomNumberGenerator(seed: 11)
        let cap = WeightCap(maxShare: share)
        for trial in 0..<40 {
            let count = Int.random(in: 1...12, using: &generator)
            var updates = (0..<count).map { _ in
                (
                    (0..<5).map { _ in Float.random(in: -3...3, using: &generator) },
                    Int.random(in: 1...100, using: &generator)
                )
            }
            // Put an attacker with a huge count at a random position.
            updates.insert(([50, 50, 50, 50, 50], 100_000_000), at: trial % (count + 1))
            var average = StreamingFedAvg(layout: Self.model(updates[0].0), weightCap: cap)
            for (values, examples) in updates { average.fold(Self.model(values), numExamples: examples) }
            let folded = try #require(try average.average()?["w"]?.floatValues)
            for (got, want) in zip(folded, Self.directMean(updates, cap: cap)) {
                #expect(abs(Double(got) - want) < 1e-4, "trial \(trial): \(folded)")
            }
        }
    }

    @Test func withoutACapOneHugeCountOwnsTheAverage() throws {
        var plain = StreamingFedAvg(layout: Self.model([0]))
        var capped = StreamingFedAvg(layout: Self.model([0]), weightCap: WeightCap(maxShare: 0.5))
        for (value, examples) in [(Float(100), 100_000_000), (0, 10), (0, 10)] {
            plain.fold(Self.model([value]), numExamples: examples)
            capped.fold(Self.model([value]), numExamples: examples)
        }
        #expect(try #require(try plain.average()?["w"]?.floatValues.first) > 99.9)
        #expect(try #require(try capped.average()?["w"]?.floatValues.first) == 50)
    }

    @Test func aHugeCountDoesNotSwallowTheHonestUpdates() throws {
        // Int.max examples against counts of 3: folding the attacker at full weight and taking the excess back
        // would lose the honest updates to rounding; kept aside, the result is exact.
        var average = StreamingFedAvg(layout: Self.model([0]), weightCap: WeightCap(maxShare: 0.5))
        for (value, examples) in [(Float(1000), Int.max), (1, 3), (3, 3)] {
            average.fold(Self.model([value]), numExamples: examples)
        }
        // Level 0.5·6/(1 − 0.5) = 6: (1000·6 + 1·3 + 3·3) / 12.
        #expect(try #require(try average.average()?["w"]?.floatValues.first) == Float((6000.0 + 12) / 12))
    }
}
