import FederationCore
import Testing

@Suite struct UpdateValidatorTests {
    let base = ModelWeights([
        "w": Tensor(shape: [2, 2], values: [0, 0, 0, 0]), "b": Tensor(shape: [2], values: [0, 0]),
    ])

    func update(w: [Float] = [1, 1, 1, 1], wShape: [Int] = [2, 2], b: [Float] = [1, 1], bName: String = "b")
        -> ModelWeights
    {
        ModelWeights(["w": Tensor(shape: wShape, values: w), bName: Tensor(shape: [b.count], values: b)])
    }

    @Test func acceptsAMatchingUpdateAndReturnsItsNorm() throws {
        let norm = try UpdateValidator().validate(update(), against: base)
        #expect(abs(norm - 6.0.squareRoot()) < 1e-12)
    }

    static let bad: [(String, UpdateRejection.Reason)] = [
        ("renamed", .wrongNames), ("reshaped", .wrongShape), ("nan", .nonFinite), ("inf", .nonFinite),
        ("far", .normTooLarge),
    ]

    @Test(arguments: bad)
    func rejects(_ kind: String, _ reason: UpdateRejection.Reason) {
        let candidate: ModelWeights =
            switch kind {
            case "renamed": update(bName: "bias")
            case "reshaped": update(wShape: [4, 1])
            case "nan": update(w: [1, .nan, 1, 1])
            case "inf": update(b: [-.infinity, 0])
            default: update(w: [100, 0, 0, 0])
            }
        #expect {
            try UpdateValidator(maxUpdateNorm: 10).validate(candidate, against: base)
        } throws: { ($0 as? UpdateRejection)?.reason == reason }
    }
}

@Suite struct SelectionPolicyTests {
    /// Finite F64 values far apart square past the largest double: refused as non-finite, never an infinite norm
    /// (which clipping would turn into a scale of zero).
    @Test func aNormThatOverflowsIsRefused() {
        let base = ModelWeights(["w": Tensor(shape: [2], dtype: .float64, converting: [0, 0])])
        let far = ModelWeights(["w": Tensor(shape: [2], dtype: .float64, converting: [1e200, 1e200])])
        #expect {
            try UpdateValidator().validate(far, against: base)
        } throws: { ($0 as? UpdateRejection)?.reason == .nonFinite }
    }

    @Test func sampleSizeFollowsFlowerRules() {
        let policy = SelectionPolicy(fractionFit: 0.3, minFitClients: 2, minAvailableClients: 4)
        #expect(policy.fitSampleSize(available: 3) == nil)
        #expect(policy.fitSampleSize(available: 4) == 2)
        #expect(policy.fitSampleSize(available: 10) == 3)
        #expect(policy.fitSampleSize(available: 100) == 30)
    }

    @Test func sameSeedSameSelectionWhateverTheInputOrder() {
        let clients = (0..<50).map { ClientID("c\($0)") }
        var first = SeededRandomNumberGenerator(seed: 5)
        var second = SeededRandomNumberGenerator(seed: 5)
        let a = SelectionPolicy.sample(10, from: clients, using: &first)
        let b = SelectionPolicy.sample(10, from: clients.reversed(), using: &second)
        #expect(a == b)
        #expect(Set(a).count == 10)
        var other = SeededRandomNumberGenerator(seed: 6)
        #expect(SelectionPolicy.sample(10, from: clients, using: &other) != a)
    }
}
