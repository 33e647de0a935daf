import FederationCore
import NIOCore

/// One model version as downloads see it: its stored encoding, in one read-only buffer that every download
/// of the version shares (a response, or a `Range` of one, is a slice of it: no copy per request, and nothing
/// a slow connection has queued costs memory of its own), next to the decoded tensors the round engine trains
/// from and checks uploads against.
///
/// Invariant: `encoded` is byte for byte the stored encoding whose SHA-256 is `sha256`, and `weights` its
/// tensors.
public struct ServedModel: Sendable {
    public let version: Int
    /// Lower-case hex SHA-256 of the encoding (the ETag).
    public let sha256: String
    public let weights: ModelWeights
    /// The whole encoding, exactly as stored.
    let encoded: ByteBuffer
    /// Bytes of the whole encoding.
    public var byteCount: Int { encoded.readableBytes }

    /// A model encoded by `SafeTensorsFile.encoded()`, written into the buffer chunk by chunk (no second
    /// temporary copy).
    init(version: Int, sha256: String, file: SafeTensorsFile) {
        var buffer = ByteBufferAllocator().buffer(capacity: file.encodedByteCount)
        file.forEachEncodedChunk(chunkSize: 4 << 20) { buffer.writeBytes($0) }
        self.version = version
        self.sha256 = sha256
        self.weights = file.weights
        self.encoded = buffer
    }

    /// A model from its stored bytes, whatever order its header gives the tensors.
    /// - Throws: `SafeTensorsError` when the bytes are not valid safetensors.
    init(version: Int, sha256: String, stored bytes: [UInt8]) throws {
        self.weights = try SafeTensorsFile.decode(bytes).weights
        self.version = version
        self.sha256 = sha256
        self.encoded = ByteBuffer(bytes: bytes)
    }

    /// Bytes `range` of the encoding: a slice of the shared buffer.
    func slice(_ range: Range<Int>) -> ByteBuffer {
        precondition(range.lowerBound >= 0 && range.upperBound <= byteCount)
        return encoded.getSlice(at: encoded.readerIndex + range.lowerBound, length: range.count)!
    }
}
