import FederationCore
import Testing

/// Norm-bounded averaging: an update farther than the clip norm from the base is folded as
/// base + (C/‖Δ‖)·Δ, with and without a weight cap.
@Suite struct NormClippingTests {
    static let base = ModelWeights(["w": Tensor(shape: [2], values: [1, 1])])

    static func update(_ x: Float, _ y: Float) -> ModelWeights {
        ModelWeights(["w": Tensor(shape: [2], values: [x, y])])
    }

    @Test func aFarUpdateIsPulledInToTheClipNormAndANearOneIsLeftAlone() throws {
        var average = StreamingFedAvg(layout: Self.base)
        // Δ = (3, 4): norm 5, clipped to 1 → base + (0.6, 0.8).
        try average.fold(payload: Self.update(4, 5), numExamples: 1, shrink: 1.0 / 5)
        try average.fold(payload: Self.update(1.5, 1), numExamples: 3)
        let result = try #require(try average.average())["w"]!.doubleValues
        let want: [Double] = [(1.6 + 4.5) / 4, (1.8 + 3.0) / 4]
        #expect(zip(result, want).allSatisfy { abs($0 - $1) < 1e-6 }, "\(result)")
    }

    @Test func theRoundAggregateClipsByTheUpdatesNormUnderAWeightCapToo() throws {
        for cap in [nil, WeightCap(maxShare: 0.5)] {
            var aggregate = RoundAggregate(strategy: .fedAvg, layout: Self.base, weightCap: cap)
            let base = GlobalModel(version: 1, sha256: "", weights: Self.base)
            let far = try UpdateValidator().check(FitResult(weights: Self.update(7, 9), numExamples: 2), against: base)
            let near = try UpdateValidator().check(FitResult(weights: Self.update(1, 2), numExamples: 2), against: base)
            try aggregate.fold(far, client: ClientID("far"), clipNorm: 2)
            try aggregate.fold(near, client: ClientID("near"), clipNorm: 2)
            let (weights, _) = try #require(try aggregate.take(.fedAvg))
            // far: Δ = (6, 8), norm 10 → base + (1.2, 1.6); near: Δ = (0, 1), within the norm.
            let want: [Double] = [3.2 / 2, 4.6 / 2]
            let got = weights["w"]!.doubleValues
            #expect(zip(got, want).allSatisfy { abs($0 - $1) < 1e-6 }, "cap \(String(describing: cap)): \(got)")
        }
    }
}
