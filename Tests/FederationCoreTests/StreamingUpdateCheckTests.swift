import FederationCore
import Testing

/// An upload checked as it streams in gets the same verdict as the same file decoded whole, wherever the
/// network splits it, and a `CheckedUpdate` folds to the same average as the weights it came from.
@Suite struct StreamingUpdateCheckTests {
    static let base = GlobalModel(
        version: 3, sha256: "base",
        weights: ModelWeights([
            "a": Tensor(shape: [2, 3], values: [0, 1, 2, 3, 4, 5]),
            "b": Tensor(shape: [3], dtype: .bfloat16, converting: [1, -1, 0.5]),
            "c": Tensor(shape: [2], dtype: .int64, converting: [7, 9]),
            "empty": Tensor(shape: [0], values: []),
        ]))

    static func file(_ a: [Float], metadata: [String: String] = ["num_examples": "5"]) -> [UInt8] {
        var weights = base.weights.tensors
        weights[0] = NamedTensor(name: "a", tensor: Tensor(shape: [2, 3], values: a))
        return SafeTensorsFile(weights: ModelWeights(weights), metadata: metadata).encoded()
    }

    /// The verdict of streaming `bytes` in pieces of `piece` bytes (after the header), and the check's state.
    static func stream(_ bytes: [UInt8], piece: Int, validator: UpdateValidator = UpdateValidator()) throws
        -> StreamingUpdateCheck
    {
        let headerLength = try bytes.withUnsafeBytes { try SafeTensorsHeader.declaredLength($0, limits: .default) }
        let header = try bytes.withUnsafeBytes {
            try SafeTensorsHeader.parse(
                json: UnsafeRawBufferPointer(rebasing: $0[8..<(8 + headerLength)]), dataLength: nil)
        }
        var check = try StreamingUpdateCheck(header: header, base: base, validator: validator)
        var position = 8 + headerLength
        while position < bytes.count {
            let end = min(position + piece, bytes.count)
            try bytes.withUnsafeBytes { try check.consume(UnsafeRawBufferPointer(rebasing: $0[position..<end])) }
            position = end
        }
        return check
    }

    @Test(arguments: [1, 2, 3, 5, 7, 8, 13, 1 << 20])
    func anyChunkingGivesTheWholeFileVerdict(piece: Int) throws {
        let good = Self.file([0, 1, 2, 3, 4, 8])  // moved by 3 in one element: norm 3
        let check = try Self.stream(good, piece: piece)
        let update = try check.finish(payload: try SafeTensorsFile.decode(good).weights)
        let whole = try UpdateValidator().check(
            try FitResult(file: try SafeTensorsFile.decode(good)), against: Self.base)
        #expect(update.norm == 3 && whole.norm == 3)
        #expect(update.numExamples == 5 && update.baseVersion == 3)

        // NaN in the very last float of the tensor, and infinity in the first: refused at the chunk holding it.
        for poisoned in [Self.file([0, 1, 2, 3, 4, .nan]), Self.file([.infinity, 1, 2, 3, 4, 5])] {
            #expect(throws: UpdateRejection(.nonFinite, "tensor \"a\" contains NaN or infinity")) {
                _ = try Self.stream(poisoned, piece: piece)
            }
        }
        let bounded = UpdateValidator(maxUpdateNorm: 2.5)
        #expect(throws: UpdateRejection.self) { _ = try Self.stream(good, piece: piece, validator: bounded) }
    }

    @Test func aShortBodyIsNeverACheckedUpdate() throws {
        let good = Self.file([0, 1, 2, 3, 4, 5])
        let check = try Self.stream(Array(good.dropLast(3)), piece: 4)
        #expect(check.remaining == 3)
        #expect(throws: UpdateRejection.self) { _ = try check.finish(payload: Self.base.weights) }
    }

    @Test func theHeaderAloneDecidesNamesShapesDTypesAndMetadata() throws {
        func verdict(_ weights: ModelWeights, _ metadata: [String: String] = ["num_examples": "1"]) throws
            -> UpdateRejection.Reason?
        {
            let bytes = SafeTensorsFile(weights: weights, metadata: metadata).encoded()
            let length = try bytes.withUnsafeBytes { try SafeTensorsHeader.declaredLength($0, limits: .default) }
            // Only the header: no tensor byte is needed for these verdicts.
            let header = try bytes.withUnsafeBytes {
                try SafeTensorsHeader.parse(
                    json: UnsafeRawBufferPointer(rebasing: $0[8..<(8 + length)]), dataLength: nil)
            }
            do {
                _ = try StreamingUpdateCheck(header: header, base: Self.base, validator: UpdateValidator())
                return nil
            } catch {
                return error.reason
            }
        }
        var tensors = Self.base.weights.tensors
        #expect(try verdict(Self.base.weights) == nil)
        #expect(try verdict(Self.base.weights, [:]) == .malformed)
        #expect(try verdict(Self.base.weights, ["num_examples": "0"]) == .malformed)
        tensors[0] = NamedTensor(name: "a", tensor: .zeros(shape: [3, 2]))
        #expect(try verdict(ModelWeights(tensors)) == .wrongShape)
        tensors[0] = NamedTensor(
            name: "a", tensor: Tensor(shape: [2, 3], dtype: .float16, converting: [0, 0, 0, 0, 0, 0]))
        #expect(try verdict(ModelWeights(tensors)) == .wrongDType)
        tensors[0] = NamedTensor(name: "z", tensor: .zeros(shape: [2, 3]))
        #expect(try verdict(ModelWeights(tensors)) == .wrongNames)
    }

    /// A checked update folds through its payload exactly as the weights do.
    @Test func foldingAPayloadEqualsFoldingTheWeights() throws {
        let updates = [Self.file([1, 1, 1, 1, 1, 1]), Self.file([3, 5, 7, 9, 11, 13])]
        var byWeights = StreamingFedAvg(layout: Self.base.weights)
        var byPayload = StreamingFedAvg(layout: Self.base.weights)
        for (index, bytes) in updates.enumerated() {
            let weights = try SafeTensorsFile.decode(bytes).weights
            byWeights.fold(weights, numExamples: index + 1)
            let update = try Self.stream(bytes, piece: 3).finish(payload: weights)
            try byPayload.fold(payload: update.payload, numExamples: index + 1)
        }
        #expect(try byPayload.average() == (try byWeights.average()))
        let expected: [Double] = [7.0 / 3, 11.0 / 3, 5, 19.0 / 3, 23.0 / 3, 9]
        let folded = try #require(try byPayload.average()?["a"]?.doubleValues)
        #expect(zip(folded, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(folded)")
    }
}
