import FederationCore
import NIOCore

/// One model version, held once: its stored encoding in one read-only buffer, which every download of the
/// version shares (a response, or a `Range` of one, is a slice of it: no copy per request, and nothing a slow
/// connection has queued costs memory of its own), and whose tensors the round engine reads in place
/// (`Tensor.Storage.shared`) to train from and to check uploads against. No decoded copy is kept beside it.
///
/// Invariant: `encoded` is byte for byte the stored encoding whose SHA-256 is `sha256`, and each tensor of
/// `weights` views exactly its bytes in it.
public struct ServedModel: Sendable {
    public let version: Int
    /// Lower-case hex SHA-256 of the encoding (the ETag).
    public let sha256: String
    /// The tensors, reading their bytes in place from `encoded`.
    public let weights: ModelWeights
    /// The whole encoding, exactly as stored.
    let encoded: ByteBuffer
    /// Bytes of the whole encoding.
    public var byteCount: Int { encoded.readableBytes }
    /// The largest model a coordinator holds: one NIO buffer (4 GiB − 1 bytes).
    public static let maxByteCount = Int(UInt32.max)
    /// The largest model an operator may start from or import: `maxByteCount` less 64 KiB, so the metadata
    /// a stored or aggregated version carries (round, parent version, source file) always fits.
    public static let maxImportByteCount = maxByteCount - (64 << 10)

    /// A model encoded by `SafeTensorsFile.encoded()`, written into the buffer chunk by chunk (no second
    /// temporary copy). The file's own tensors are not kept: let go of them, and the model is held once.
    /// - Throws: `SafeTensorsError` `modelTooLarge` when the encoding is over `maxByteCount`.
    init(version: Int, sha256: String, file: SafeTensorsFile) throws(SafeTensorsError) {
        let count = file.encodedByteCount
        guard count <= Self.maxByteCount else { throw Self.tooLarge(count) }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        file.forEachEncodedChunk(chunkSize: 4 << 20) { buffer.writeBytes($0) }
        try self.init(version: version, sha256: sha256, encoded: buffer)
    }

    static func tooLarge(_ count: Int) -> SafeTensorsError {
        SafeTensorsError(.modelTooLarge, "a model of \(count) bytes is over the 4 GiB − 1 bytes a coordinator holds")
    }

    /// A model from its stored bytes, whatever order its header gives the tensors.
    /// - Throws: `SafeTensorsError` when the bytes are not valid safetensors.
    init(version: Int, sha256: String, stored bytes: [UInt8]) throws {
        guard bytes.count <= Self.maxByteCount else { throw Self.tooLarge(bytes.count) }
        try self.init(version: version, sha256: sha256, encoded: ByteBuffer(bytes: bytes))
    }

    private init(version: Int, sha256: String, encoded: ByteBuffer) throws(SafeTensorsError) {
        let (header, dataStart) = try encoded.withUnsafeReadableBytes { raw throws(SafeTensorsError) in
            try SafeTensorsHeader.read(wholePayload: raw)
        }
        // The header checks that its tensors tile the data section exactly, so each view is in bounds.
        self.weights = ModelWeights(
            header.entries.map { entry in
                let range = (dataStart + entry.dataRange.lowerBound)..<(dataStart + entry.dataRange.upperBound)
                return NamedTensor(
                    name: entry.name,
                    tensor: Tensor(
                        shape: entry.shape, dtype: entry.dtype,
                        viewing: EncodedTensorBytes(encoding: encoded, range: range)))
            })
        self.version = version
        self.sha256 = sha256
        self.encoded = encoded
    }

    /// Bytes `range` of the encoding, sharing the buffer's storage. (Not `getSlice`: NIO copies a slice that
    /// starts 16 MiB or more into a buffer; moving a copy's indices never copies.) Never write to the result:
    /// a write would copy the whole model, not the range.
    func slice(_ range: Range<Int>) -> ByteBuffer {
        precondition(range.lowerBound >= 0 && range.upperBound <= byteCount)
        var view = encoded
        view.moveWriterIndex(to: encoded.readerIndex + range.upperBound)
        view.moveReaderIndex(to: encoded.readerIndex + range.lowerBound)
        return view
    }
}

/// One tensor's bytes inside a served model's buffer, read in place (the buffer's storage is shared, never
/// copied: it is never written after the model is built).
struct EncodedTensorBytes: TensorByteSource {
    /// The whole encoding.
    let encoding: ByteBuffer
    /// The tensor's bytes, relative to the encoding's first readable byte.
    let range: Range<Int>

    var byteCount: Int { range.count }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try encoding.withUnsafeReadableBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }
}
