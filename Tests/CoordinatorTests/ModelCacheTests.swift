import FederationCore
import Hummingbird
import NIOCore
import Testing

@testable import Coordinator

@Suite struct ModelCacheTests {
    static func served(_ version: Int, _ value: Float) -> ServedModel {
        ServedModel(
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

    /// Collects what a response body writes.
    struct Collector: ResponseBodyWriter {
        var bytes: [UInt8] = []
        var writes = 0
        mutating func write(_ buffer: ByteBuffer) async throws {
            bytes += buffer.readableBytesView
            writes += 1
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    static func written(_ model: ServedModel, _ range: Range<Int>, chunkSize: Int) async throws -> [UInt8] {
        var writer: any ResponseBodyWriter = Collector()
        try await model.write(range, chunkSize: chunkSize, to: &writer)
        return (writer as! Collector).bytes
    }

    /// A file whose header lists the tensors out of name order (as any safetensors writer may): the served
    /// bytes are still exactly the stored ones, for every range, in chunks of any size.
    @Test func servesTheStoredBytesExactlyForEveryRange() async throws {
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
        for chunkSize in [1, 3, 1 << 20] {
            #expect(try await Self.written(model, 0..<stored.count, chunkSize: chunkSize) == stored)
        }
        for lower in [0, 5, 8 + json.count - 1, 8 + json.count + 3, stored.count - 1] {
            #expect(try await Self.written(model, lower..<stored.count, chunkSize: 5) == Array(stored[lower...]))
        }
        #expect(
            try await Self.written(model, 10..<(8 + json.count + 6), chunkSize: 2)
                == Array(stored[10..<(8 + json.count + 6)]))
    }

    @Test func servesOurOwnEncodingFromTheTensors() async throws {
        let file = SafeTensorsFile(
            weights: ModelWeights(["x": Tensor(shape: [4], values: [1, -1, 0.25, 8]), "y": .zeros(shape: [1])]),
            metadata: ["round": "3"])
        let model = ServedModel(version: 2, sha256: "y", file: file)
        #expect(try await Self.written(model, 0..<model.byteCount, chunkSize: 7) == file.encoded())
    }
}
