import FederationCore
import Testing

/// Every dtype Rondo averages: stored as its bytes, read exactly, averaged in double precision and written back
/// in its own dtype by the documented rules.
@Suite struct TensorDTypeTests {
    static let aggregated = TensorDType.allCases.filter(\.isAggregated)

    static func file(_ tensors: [String: Tensor]) throws -> ModelWeights {
        try SafeTensorsFile.decode(SafeTensorsFile(weights: ModelWeights(tensors)).encoded()).weights
    }

    @Test(arguments: aggregated)
    func everyDTypeSurvivesASafetensorsRoundTrip(dtype: TensorDType) throws {
        let values: [Double] =
            dtype == .bool ? [0, 1, 1, 0] : dtype.isFloatingPoint ? [-1.5, 0, 0.25, 3] : [0, 1, 7, 100]
        let tensor = Tensor(shape: [2, 2], dtype: dtype, converting: values)
        #expect(tensor.dtype == dtype && tensor.byteCount == 4 * dtype.byteWidth)
        let decoded = try #require(try Self.file(["t": tensor])["t"])
        #expect(decoded == tensor)
        #expect(decoded.doubleValues == values, "these values are exact in \(dtype.rawValue)")
    }

    @Test func eightBitFloatsAreRefusedNamingTheTensor() throws {
        let header = #"{"adapter.scale":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init)
        bytes += Array(header.utf8) + [0, 0]
        #expect {
            try SafeTensorsFile.decode(bytes)
        } throws: { error in
            let error = error as? SafeTensorsError
            return error?.code == .unsupportedDType && error?.message.contains("adapter.scale") == true
        }
    }

    /// Two clients with 1 and 3 examples: the average is (a + 3b) / 4, rounded once into the dtype.
    static func average(_ a: [Double], _ b: [Double], dtype: TensorDType) -> [Double] {
        let layout = ModelWeights(["t": Tensor(shape: [a.count], dtype: dtype, converting: a)])
        var average = StreamingFedAvg(layout: layout)
        average.fold(ModelWeights(["t": Tensor(shape: [a.count], dtype: dtype, converting: a)]), numExamples: 1)
        average.fold(ModelWeights(["t": Tensor(shape: [b.count], dtype: dtype, converting: b)]), numExamples: 3)
        let result = try! average.average()!["t"]!
        #expect(result.dtype == dtype, "written back in its own dtype")
        return result.doubleValues
    }

    @Test func floatsAreAveragedWideAndRoundedOnceToNearest() {
        // 1 + 2^-10 is the float16 just above 1; the mean of 1 and that (weights 1:3) is not representable and
        // rounds to the nearer float16.
        let halfStep = 1.0 / 1024
        #expect(Self.average([1], [1 + halfStep], dtype: .float16) == [1 + halfStep])
        #expect(Self.average([0.5], [1.5], dtype: .float16) == [1.25])
        // bfloat16 keeps 8 bits of mantissa: 1 + 2^-7 is representable, (1 + 3·(1 + 2^-7)) / 4 rounds to it.
        #expect(Self.average([1], [1 + 1.0 / 128], dtype: .bfloat16) == [1 + 1.0 / 128])
        #expect(Self.average([256], [512], dtype: .bfloat16) == [448])
        // 1 + 2^-8 + 2^-30 is just above the halfway point between the bfloat16s 1 and 1 + 2^-7; as a Float it
        // would be exactly halfway and round (to even) down. Rounded once, it rounds up.
        let justAboveHalf = 1 + 1.0 / 256 + 1.0 / 1_073_741_824
        #expect(Tensor(shape: [1], dtype: .bfloat16, converting: [justAboveHalf]).doubleValues == [1 + 1.0 / 128])
        #expect(Tensor(shape: [1], dtype: .bfloat16, converting: [-justAboveHalf]).doubleValues == [-1 - 1.0 / 128])
        // float64 keeps what float32 would lose.
        #expect(Self.average([1e-12], [1 + 1e-12], dtype: .float64) == [(1e-12 + 3 * (1 + 1e-12)) / 4])
        // Large float16 sums do not overflow the accumulator (65504 is the largest float16).
        #expect(Self.average([65504], [65504], dtype: .float16) == [65504])
    }

    @Test func integersAreRoundedToNearestAndClamped() {
        // num_batches_tracked-like counters: (10 + 3·13) / 4 = 12.25 → 12; (1 + 3·2) / 4 = 1.75 → 2.
        #expect(Self.average([10, 1], [13, 2], dtype: .int64) == [12, 2])
        // Ties go away from zero: (1 + 3·3) / 4 = 2.5 → 3, and -2.5 → -3.
        #expect(Self.average([1, -1], [3, -3], dtype: .int32) == [3, -3])
        #expect(Self.average([255], [255], dtype: .uint8) == [255])
        let clamped = Tensor(shape: [2], dtype: .int8, converting: [1000, -1000])
        #expect(clamped.doubleValues == [127, -128])
        let huge = Tensor(shape: [1], dtype: .int64, converting: [1e30])
        #expect(huge.doubleValues == [Double(Int64.max)])
    }

    @Test func booleansTakeTheWeightedMajority() throws {
        // weights 1:3 — the heavier client decides; a tie (two equal weights) keeps true.
        #expect(Self.average([1, 0], [0, 1], dtype: .bool) == [0, 1])
        let layout = ModelWeights(["m": Tensor(shape: [1], dtype: .bool, converting: [0])])
        var average = StreamingFedAvg(layout: layout)
        average.fold(ModelWeights(["m": Tensor(shape: [1], dtype: .bool, converting: [1])]), numExamples: 2)
        average.fold(ModelWeights(["m": Tensor(shape: [1], dtype: .bool, converting: [0])]), numExamples: 2)
        #expect(try average.average()?["m"]?.doubleValues == [1])
    }

    @Test func validationChecksEveryDTypeAndTheNormCountsFloatsOnly() throws {
        let base = ModelWeights([
            "w": Tensor(shape: [2], dtype: .bfloat16, converting: [0, 0]),
            "steps": Tensor(shape: [], dtype: .int64, converting: [0]),
        ])
        let validator = UpdateValidator(maxUpdateNorm: 10)
        let update = ModelWeights([
            "w": Tensor(shape: [2], dtype: .bfloat16, converting: [3, 4]),
            "steps": Tensor(shape: [], dtype: .int64, converting: [1_000_000]),
        ])
        #expect(try validator.validate(update, against: base) == 5, "the counter is not part of the norm")
        let wrongDType = ModelWeights([
            "w": Tensor(shape: [2], dtype: .float32, converting: [3, 4]),
            "steps": Tensor(shape: [], dtype: .int64, converting: [1]),
        ])
        #expect {
            try validator.validate(wrongDType, against: base)
        } throws: { error in
            let rejection = error as? UpdateRejection
            return rejection?.reason == .wrongDType
                && rejection?.message.contains("\"w\" is F32, expected BF16") == true
        }
        let notANumber = ModelWeights([
            "w": Tensor(shape: [2], dtype: .float16, converting: [.nan, 0]),
            "steps": Tensor(shape: [], dtype: .int64, converting: [1]),
        ])
        let halfBase = ModelWeights([
            "w": Tensor(shape: [2], dtype: .float16, converting: [0, 0]),
            "steps": Tensor(shape: [], dtype: .int64, converting: [0]),
        ])
        #expect(throws: UpdateRejection.self) { try validator.validate(notANumber, against: halfBase) }
    }
}
