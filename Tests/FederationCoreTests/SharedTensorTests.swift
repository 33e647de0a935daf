import FederationCore
import Testing

/// A tensor read in place from bytes another owner keeps (how the coordinator holds each model once) behaves
/// exactly like one holding its own copy.
@Suite struct SharedTensorTests {
    /// Bytes in an array, standing in for the coordinator's served buffer.
    struct ArrayBytes: TensorByteSource {
        let bytes: [UInt8]
        var byteCount: Int { bytes.count }
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try bytes.withUnsafeBytes(body)
        }
    }

    static func shared(_ tensor: Tensor) -> Tensor {
        Tensor(shape: tensor.shape, dtype: tensor.dtype, viewing: ArrayBytes(bytes: tensor.littleEndianBytes))
    }

    static let owned: [Tensor] = [
        Tensor(shape: [2, 3], values: [1, -2.5, 0, 3e-8, 7, -0.125]),
        Tensor(shape: [4], dtype: .bfloat16, converting: [0.5, -1, 3, 1024]),
        Tensor(shape: [3], dtype: .float16, converting: [0.25, -6, 100]),
        Tensor(shape: [2], dtype: .int64, converting: [-3, 9_000_000_000]),
    ]

    @Test(arguments: owned)
    func readsLikeItsOwnedTwin(_ owned: Tensor) {
        let shared = Self.shared(owned)
        #expect(shared.isShared && !owned.isShared)
        #expect(shared.dtype == owned.dtype && shared.shape == owned.shape)
        #expect(shared == owned && owned == shared)
        #expect(shared.floatValues == owned.floatValues)
        #expect(shared.doubleValues == owned.doubleValues)
        #expect(shared.littleEndianBytes == owned.littleEndianBytes)
    }

    /// F32 compares as numbers whatever the storage: NaN is not equal to itself, −0 equals 0.
    @Test func float32EqualityIsNumericForSharedTensorsToo() {
        let withNaN = Tensor(shape: [2], values: [.nan, 1])
        #expect(Self.shared(withNaN) != withNaN && withNaN != Self.shared(withNaN))
        #expect(Self.shared(Tensor(shape: [1], values: [-0.0])) == Tensor(shape: [1], values: [0]))
    }

    /// F64 and F16 distances from a shared base match the owned computation.
    @Test func distancesFromASharedBaseMatchForEveryFloatDType() throws {
        for dtype in [TensorDType.float64, .float16, .bfloat16, .float32] {
            let base = ModelWeights(["t": Tensor(shape: [3], dtype: dtype, converting: [1, -2, 0.5])])
            let update = ModelWeights(["t": Tensor(shape: [3], dtype: dtype, converting: [1.5, -2, 4])])
            let sharedBase = ModelWeights(["t": Self.shared(base["t"]!)])
            let validator = UpdateValidator()
            #expect(
                try validator.validate(update, against: sharedBase) == (try validator.validate(update, against: base)))
        }
    }

    @Test func differentElementsAreNotEqual() {
        let base = Tensor(shape: [3], values: [1, 2, 3])
        #expect(Self.shared(base) != Tensor(shape: [3], values: [1, 2, 4]))
        #expect(Self.shared(base) != Tensor(shape: [1, 3], values: [1, 2, 3]), "shape counts")
    }

    /// Uploads are checked against the served model read in place: same norm, same verdicts.
    @Test func updatesAreCheckedAgainstASharedBaseAsAgainstAnOwnedOne() throws {
        let base = ModelWeights([
            "f": Tensor(shape: [3], values: [1, 2, 3]), "h": Tensor(shape: [2], dtype: .bfloat16, converting: [1, -1]),
        ])
        let sharedBase = ModelWeights(base.tensors.map { NamedTensor(name: $0.name, tensor: Self.shared($0.tensor)) })
        let update = ModelWeights([
            "f": Tensor(shape: [3], values: [2, 2, 1]),
            "h": Tensor(shape: [2], dtype: .bfloat16, converting: [1.5, -1]),
        ])
        let validator = UpdateValidator(maxUpdateNorm: 10)
        let norm = try validator.validate(update, against: sharedBase)
        #expect(norm == (try validator.validate(update, against: base)))
        #expect(abs(norm - (1 + 4 + 0.25).squareRoot()) < 1e-12)
        let poisoned = ModelWeights([
            "f": Tensor(shape: [3], values: [2, .nan, 1]),
            "h": Tensor(shape: [2], dtype: .bfloat16, converting: [1, -1]),
        ])
        #expect(throws: UpdateRejection.self) { try validator.validate(poisoned, against: sharedBase) }
    }
}
