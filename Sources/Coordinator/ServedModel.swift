import FederationCore
import HTTPTypes
import Hummingbird
import NIOCore

/// One model version as downloads see it: its stored encoding, held as the header bytes plus the decoded
/// tensors, and streamed out in chunks.
///
/// The tensors are the same storage the round engine trains from and validates against (`ModelWeights` is a
/// copy-on-write value), so a version in memory costs one copy of the model, however many clients download
/// it at once: each response copies one chunk at a time into the socket's buffers, with backpressure.
///
/// Invariant: `header` followed by the tensors' little-endian bytes in `dataOrder` is byte for byte the
/// stored encoding whose SHA-256 is `sha256`.
public struct ServedModel: Sendable {
    public let version: Int
    /// Lower-case hex SHA-256 of the encoding (the ETag).
    public let sha256: String
    public let weights: ModelWeights
    /// The 8-byte length and the JSON header, exactly as stored.
    let header: ByteBuffer
    /// Indices into `weights.tensors` in data-section order.
    private let dataOrder: [Int]
    /// Bytes of the whole encoding.
    public let byteCount: Int

    /// A model encoded by `SafeTensorsFile.encoded()` (tensors in name order).
    init(version: Int, sha256: String, file: SafeTensorsFile) {
        self.version = version
        self.sha256 = sha256
        self.weights = file.weights
        self.header = ByteBuffer(bytes: file.headerBytes())
        self.dataOrder = Array(file.weights.tensors.indices)
        self.byteCount = header.readableBytes + file.weights.dataByteCount
    }

    /// A model from its stored bytes, whatever order its header gives the tensors.
    /// - Throws: `SafeTensorsError` when the bytes are not valid safetensors.
    init(version: Int, sha256: String, stored bytes: [UInt8]) throws {
        let decoded = try SafeTensorsFile.decode(bytes)
        let headerLength = try bytes.withUnsafeBytes { raw in
            try SafeTensorsHeader.declaredLength(raw, limits: .default)
        }
        let parsed = try bytes.withUnsafeBytes { raw in
            try SafeTensorsHeader.parse(
                json: UnsafeRawBufferPointer(rebasing: raw[8..<(8 + headerLength)]), dataLength: nil)
        }
        let indexByName = Dictionary(
            uniqueKeysWithValues: decoded.weights.tensors.enumerated().map { ($0.element.name, $0.offset) })
        self.version = version
        self.sha256 = sha256
        self.weights = decoded.weights
        self.header = ByteBuffer(bytes: bytes[0..<(8 + headerLength)])
        self.dataOrder = parsed.entries.map { indexByName[$0.name]! }
        self.byteCount = bytes.count
    }

    /// Writes bytes `range` of the encoding in chunks of at most `chunkSize`, awaiting the connection between
    /// chunks (so a slow client holds one chunk, not the model). Chunks stay below the 1 MiB mmap threshold
    /// `rondo serve` sets, so they come from (and go back to) the heap instead of fresh zeroed pages.
    func write(
        _ range: Range<Int>, chunkSize: Int = 256 << 10, to writer: inout any ResponseBodyWriter, slots: TransferSlots
    ) async throws {
        // NIO queues what a connection cannot send yet, and a fast writer can queue many chunks before it
        // learns the connection is full: the download slots bound how many connections do that at once.
        await slots.acquire()
        do {
            try await write(range, chunkSize: chunkSize, to: &writer)
        } catch {
            await slots.release()
            throw error
        }
        await slots.release()
    }

    /// Writes bytes `range` of the encoding (without taking a download slot).
    func write(_ range: Range<Int>, chunkSize: Int = 256 << 10, to writer: inout any ResponseBodyWriter)
        async throws
    {
        precondition(range.lowerBound >= 0 && range.upperBound <= byteCount)
        var position = range.lowerBound
        if position < header.readableBytes {
            let end = min(range.upperBound, header.readableBytes)
            try await writer.write(header.getSlice(at: header.readerIndex + position, length: end - position)!)
            position = end
        }
        var tensorStart = header.readableBytes
        for index in dataOrder where position < range.upperBound {
            let tensor = weights.tensors[index].tensor
            let tensorEnd = tensorStart + tensor.byteCount
            while position < min(tensorEnd, range.upperBound) {
                let from = position - tensorStart
                let count = min(chunkSize, min(tensorEnd, range.upperBound) - position)
                let chunk = tensor.withLittleEndianBytes { raw in
                    ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: raw[from..<(from + count)]))
                }
                try await writer.write(chunk)
                position += count
            }
            tensorStart = tensorEnd
        }
    }
}
