import FederationCore
import Testing

@Suite struct SafeTensorsTests {
    static let weights = ModelWeights([
        "layer.weight": Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
        "layer.bias": Tensor(shape: [2], values: [-0.5, 0.25]),
        "scalar": Tensor(shape: [], values: [42]),
    ])

    /// A file from a header we write by hand, to express malformed cases the encoder never produces.
    static func file(header: String, data: [UInt8]) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        var out: [UInt8] = []
        let length = UInt64(headerBytes.count)
        for index in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(index)))) }
        return out + headerBytes + data
    }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    @Test func roundTripKeepsWeightsAndMetadata() throws {
        let original = SafeTensorsFile(weights: Self.weights, metadata: ["num_examples": "12", "note": "x\"y"])
        let bytes = original.encoded()
        #expect((8 + Int(bytes[0])) % 8 == 0, "header padded so data is 8-byte aligned")
        let decoded = try SafeTensorsFile.decode(bytes)
        #expect(decoded == original)
        #expect(decoded.encoded() == bytes, "encoding is deterministic")
    }

    @Test func readsAHandWrittenFileInTheReferenceLayout() throws {
        // Layout as written by the Python `safetensors` package: data in header order, offsets relative to the data start.
        let header =
            #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#
        let bytes = Self.file(header: header, data: Self.floats([1, 2, 3, 4]))
        let decoded = try SafeTensorsFile.decode(bytes)
        #expect(decoded.weights["a"] == Tensor(shape: [1, 2], values: [1, 2]))
        #expect(decoded.weights["b"] == Tensor(shape: [2], values: [3, 4]))
        #expect(decoded.metadata == ["format": "pt"])
    }

    static let rejections: [(String, [UInt8], SafeTensorsError.Code)] = [
        ("fewer than 8 bytes", [1, 0, 0], .truncated),
        ("header length beyond the body", file(header: "{}", data: []).prefix(9).map { $0 } + [], .headerBeyondBody),
        (
            "header length above the limit", [0, 0, 0, 0x10, 0, 0, 0, 0] + [UInt8](repeating: 0x20, count: 16),
            .headerTooLarge
        ),
        ("non-JSON header", file(header: "{nope", data: []), .invalidHeader),
        ("header is an array", file(header: "[]", data: []), .invalidHeader),
        (
            "unknown dtype",
            file(header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: floats([1])), .unknownDType
        ),
        (
            "known but unsupported dtype (8-bit float)",
            file(
                header: #"{"a":{"dtype":"F8_E5M2","shape":[8],"data_offsets":[0,8]}}"#,
                data: [UInt8](repeating: 0, count: 8)), .unsupportedDType
        ),
        (
            "offsets past the data",
            file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: floats([1])),
            .offsetOutOfRange
        ),
        (
            "reversed offsets",
            file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: floats([1])), .invalidOffsets
        ),
        (
            "overlapping tensors",
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                data: floats([1, 2, 3])),
            .overlappingData
        ),
        (
            "a gap in the data",
            file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: floats([1, 2])),
            .uncoveredData
        ),
        (
            "trailing bytes",
            file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: floats([1, 2])),
            .uncoveredData
        ),
        (
            "shape disagrees with byte length",
            file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: floats([1, 2])),
            .sizeMismatch
        ),
        (
            "duplicate names",
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                data: floats([1, 2])),
            .duplicateName
        ),
        (
            "negative dimension",
            file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: floats([1])), .invalidShape
        ),
        ("metadata not strings", file(header: #"{"__metadata__":{"n":1}}"#, data: []), .invalidMetadata),
        (
            "missing dtype", file(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: floats([1])),
            .invalidHeader
        ),
    ]

    @Test(arguments: rejections)
    func rejectsMalformedInput(_ name: String, _ bytes: [UInt8], _ code: SafeTensorsError.Code) {
        #expect("\(name)") {
            try SafeTensorsFile.decode(bytes, limits: SafeTensorsLimits(maxHeaderBytes: 1 << 20, maxTensorCount: 100))
        } throws: { ($0 as? SafeTensorsError)?.code == code }
    }

    @Test func rejectsTooManyTensors() {
        let bytes = SafeTensorsFile(weights: Self.weights).encoded()
        #expect(throws: SafeTensorsError.self) {
            try SafeTensorsFile.decode(bytes, limits: SafeTensorsLimits(maxTensorCount: 2))
        }
    }

    @Test func everyTruncationIsRejectedNotCrashed() {
        let bytes = SafeTensorsFile(weights: Self.weights, metadata: ["k": "v"]).encoded()
        for length in 0..<bytes.count {
            #expect(throws: SafeTensorsError.self) { try SafeTensorsFile.decode(Array(bytes[0..<length])) }
        }
    }
}
