import FederationCore
import Testing

@Suite struct WeightCapTests {
    static func shares(_ weights: [Double]) -> [Double] {
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    @Test func honestWeightsAreLeftAlone() {
        let cap = WeightCap(maxShare: 0.5)
        #expect(cap.level(for: [3, 2, 4, 1]) == nil)
        #expect(cap.apply(to: [3, 2, 4, 1]) == [3, 2, 4, 1])
    }

    @Test func aDominantClientIsClippedToTheShare() throws {
        let cap = WeightCap(maxShare: 0.5)
        // 10 of 12 is clipped at c = 0.5·(1 + 1) / (1 − 0.5) = 2, holding exactly half.
        #expect(cap.apply(to: [10, 1, 1]) == [2, 1, 1])
        let huge = cap.apply(to: [Double(Int.max), 5, 7, 9])
        #expect(try #require(Self.shares(huge).max()) <= 0.5 + 1e-12)
        #expect(Array(huge.dropFirst()) == [5, 7, 9], "clients below the level keep their weight")
    }

    @Test func twoHeavyClientsAreClippedTogether() throws {
        let cap = WeightCap(maxShare: 0.3)
        let weights = cap.apply(to: [100, 90, 1, 1, 1, 1, 1, 1, 1, 1])
        let shares = Self.shares(weights)
        #expect(try #require(shares.max()) <= 0.3 + 1e-12)
        #expect(weights[0] == weights[1], "both clipped clients sit at the same level")
        #expect(weights.dropFirst(2).allSatisfy { $0 == 1 })
    }

    @Test func tooFewClientsForTheShareGetEqualWeights() {
        // Three clients cannot each hold at most 25 %; equal thirds come closest.
        #expect(WeightCap(maxShare: 0.25).apply(to: [50, 10, 1]) == [1, 1, 1])
        #expect(WeightCap(maxShare: 0.5).apply(to: [7]) == [7])
    }

    @Test(arguments: [0.1, 0.2, 0.25, 0.34, 0.5, 0.9])
    func theCapHoldsForRandomWeights(share: Double) throws {
        var generator = SeededRandomNumberGenerator(seed: UInt64(share * 1000))
        let cap = WeightCap(maxShare: share)
        for _ in 0..<200 {
            let count = Int.random(in: 1...30, using: &generator)
            let weights = (0..<count).map { _ in
                Double.random(in: 0...1, using: &generator) < 0.1
                    ? Double(Int.random(in: 1...1_000_000_000, using: &generator))
                    : Double(Int.random(in: 1...1000, using: &generator))
            }
            let capped = cap.apply(to: weights)
            let largest = try #require(Self.shares(capped).max())
            if share * Double(count) > 1 {
                #expect(largest <= share + 1e-9, "weights \(weights) capped \(capped)")
            } else {
                #expect(Set(capped).count == 1, "too few clients: equal weights")
            }
            let clipped = zip(weights, capped).filter { $0 != $1 }.count
            #expect(clipped < cap.clippedClientBound)
            #expect(zip(weights, capped).allSatisfy { $1 <= $0 && $1 > 0 })
        }
    }
}
