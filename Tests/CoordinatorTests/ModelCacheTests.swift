import FederationCore
import NIOCore
import Testing

@testable import Coordinator

@Suite struct ModelCacheTests {
    static func served(_ version: Int, _ value: Float) -> ServedModel {
        try! ServedModel(
            version: version, sha256: "sha-\(version)",
            file: SafeTensorsFile(weights: ModelWeights(["w": Tensor(shape: [2], values: [value, value])])))
    }

    @Test func keepsOnlyTheVersionsTheEngineHolds() {
        var cache = ModelCache()
        cache.insert(Self.served(1, 1))
        cache.insert(Self.served(2, 2))
        cache.insert(Self.served(2, 2))
        #expect(cache.versions == [1, 2], "each version once")
        cache.insert(Self.served(3, 3))
        cache.keep(only: [2, 3])
        #expect(cache.versions == [2, 3])
        #expect(cache.model(version: 1) == nil)
        #expect(cache.model(version: 3)?.sha256 == "sha-3")
    }

    static func written(_ model: ServedModel, _ range: Range<Int>) -> [UInt8] {
        Array(model.slice(range).readableBytesView)
    }

    /// A file whose header lists the tensors out of name order (as any safetensors writer may): the served
    /// bytes are still exactly the stored ones, for every range.
    @Test func servesTheStoredBytesExactlyForEveryRange() throws {
        let weights = ModelWeights([
            "a": Tensor(shape: [3], values: [1, 2, 3]),
            "b": Tensor(shape: [2], dtype: .bfloat16, converting: [0.5, -2]),
        ])
        // Data order b, a; header padded to a multiple of 8 as the reference writer does.
        var json = Array(
            #"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}"#
                .utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var stored = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64($0))) } + json
        stored += weights["b"]!.littleEndianBytes + weights["a"]!.littleEndianBytes
        let model = try ServedModel(version: 7, sha256: "x", stored: stored)
        #expect(model.byteCount == stored.count)
        #expect(model.weights == weights)
        #expect(Self.written(model, 0..<stored.count) == stored)
        for lower in [0, 5, 8 + json.count - 1, 8 + json.count + 3, stored.count - 1] {
            #expect(Self.written(model, lower..<stored.count) == Array(stored[lower...]))
        }
        #expect(Self.written(model, 10..<(8 + json.count + 6)) == Array(stored[10..<(8 + json.count + 6)]))
    }

    /// The engine's tensors read the served bytes in place: equal to the file's, an empty one (`m`) included.
    @Test func servesOurOwnEncodingWrittenChunkByChunk() throws {
        let file = SafeTensorsFile(
            weights: ModelWeights([
                "x": Tensor(shape: [4], values: [1, -1, 0.25, 8]), "m": .zeros(shape: [0]), "y": .zeros(shape: [1]),
            ]),
            metadata: ["round": "3"])
        let model = try ServedModel(version: 2, sha256: "y", file: file)
        #expect(Self.written(model, 0..<model.byteCount) == file.encoded())
        #expect(model.weights == file.weights)
        let readInPlace = model.weights.tensors.allSatisfy { $0.tensor.isShared }
        #expect(readInPlace, "no decoded copy beside the buffer")
    }

    /// Past 16 MiB NIO's `getSlice` copies; a range of a big model, and each of its tensors, must still read the
    /// one buffer in place.
    @Test func rangesAndTensorsBeyond16MiBShareTheOneBuffer() throws {
        let count = 3 << 20
        let file = SafeTensorsFile(
            weights: ModelWeights([
                "a": Tensor(shape: [count], values: [Float](repeating: 1, count: count)),
                "b": Tensor(shape: [count], values: (0..<count).map { Float($0) }),
            ]))
        let model = try ServedModel(version: 1, sha256: "z", file: file)
        let storage = model.slice(0..<model.byteCount).withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        let whole = storage..<(storage + UInt(model.byteCount))
        let late = model.slice((20 << 20)..<model.byteCount)
        #expect(late.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == storage, "no copy for a late range")
        #expect(Array(late.readableBytesView) == Array(file.encoded()[(20 << 20)...]))
        for named in model.weights.tensors {
            let start = named.tensor.withLittleEndianBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(whole.contains(start), "tensor \(named.name) reads the buffer in place")
        }
        #expect(model.weights["b"]?.floatValues.last == Float(count - 1))
    }

    /// Stored bytes that are not a whole safetensors file are refused, never served or read out of bounds.
    @Test func damagedStoredBytesAreRefused() throws {
        let good = SafeTensorsFile(weights: ModelWeights(["w": Tensor(shape: [4], values: [1, 2, 3, 4])])).encoded()
        for damaged in [
            Array(good.prefix(5)), Array(good.dropLast(3)), good + [0], [UInt8](repeating: 0xff, count: 16),
        ] {
            #expect(throws: SafeTensorsError.self) { try ServedModel(version: 1, sha256: "d", stored: damaged) }
        }
    }
}
