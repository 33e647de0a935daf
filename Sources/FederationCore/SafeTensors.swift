/// The safetensors container: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`, then raw little-endian data.
///
/// This is the wire and storage format for every model and update, so Python (`safetensors`, `numpy`,
/// `torch`) reads Rondo's bytes with no Rondo code. Decoding validates everything before it allocates tensor
/// storage: hostile or truncated input yields a `SafeTensorsError`, never a crash or a partial model.
public struct SafeTensorsFile: Sendable, Equatable {
    public var weights: ModelWeights
    /// Free-form string metadata (`__metadata__`); Rondo puts `num_examples` and `metrics` here.
    public var metadata: [String: String]

    public init(weights: ModelWeights, metadata: [String: String] = [:]) {
        self.weights = weights
        self.metadata = metadata
    }
}

/// Limits a decoder enforces before trusting a header.
public struct SafeTensorsLimits: Sendable, Equatable {
    /// Largest accepted JSON header. Default 16 MiB (the reference implementation allows 100 MB; a model with
    /// a few thousand tensors needs well under 1 MiB).
    public var maxHeaderBytes: Int
    /// Most tensors accepted in one file. Default 100,000.
    public var maxTensorCount: Int

    public init(maxHeaderBytes: Int = 16 << 20, maxTensorCount: Int = 100_000) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxTensorCount = maxTensorCount
    }

    public static let `default` = SafeTensorsLimits()
}

extension SafeTensorsFile {
    /// Decodes and validates a safetensors payload.
    /// - Throws: `SafeTensorsError` naming the first problem found.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer,
        limits: SafeTensorsLimits = .default
    ) throws(SafeTensorsError) -> SafeTensorsFile {
        let (header, dataStart) = try SafeTensorsHeader.read(wholePayload: bytes, limits: limits)
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(header.entries.count)
        for entry in header.entries {
            let raw = UnsafeRawBufferPointer(
                rebasing: bytes[(dataStart + entry.dataRange.lowerBound)..<(dataStart + entry.dataRange.upperBound)])
            let tensor =
                entry.dtype == .float32
                ? Tensor(shape: entry.shape, values: TensorElements.float32s(from: raw))
                : Tensor(shape: entry.shape, dtype: entry.dtype, littleEndianBytes: Array(raw))
            tensors.append(NamedTensor(name: entry.name, tensor: tensor))
        }
        return SafeTensorsFile(weights: ModelWeights(tensors), metadata: header.metadata)
    }

    /// Decodes and validates a safetensors payload held in an array.
    public static func decode(_ bytes: [UInt8], limits: SafeTensorsLimits = .default) throws(SafeTensorsError)
        -> SafeTensorsFile
    {
        let result: Result<SafeTensorsFile, SafeTensorsError> = bytes.withUnsafeBytes { raw in
            do throws(SafeTensorsError) { return .success(try decode(raw, limits: limits)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Encodes to safetensors bytes: tensors in name order, contiguous, header padded with spaces to a multiple
    /// of 8 bytes (as the reference implementation does, so the data section is aligned).
    public func encoded() -> [UInt8] {
        var out = headerBytes()
        out.reserveCapacity(out.count + weights.dataByteCount)
        for named in weights.tensors {
            named.tensor.withLittleEndianBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// The encoding's first part: the 8-byte length and the padded JSON header. The tensors' little-endian
    /// bytes follow in name order (`ModelWeights` order), so a writer can stream them from the tensors
    /// themselves instead of building the whole encoding.
    public func headerBytes() -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = []
        if !metadata.isEmpty {
            members.append(
                ("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        var offset = 0
        for named in weights.tensors {
            let size = named.tensor.byteCount
            members.append(
                (
                    named.name,
                    .object([
                        ("dtype", .string(named.tensor.dtype.rawValue)),
                        ("shape", .array(named.tensor.shape.map { .number(Double($0)) })),
                        ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + size))])),
                    ])
                ))
            offset += size
        }
        var header = Array(JSONValue.object(members).serialized().utf8)
        while (8 + header.count) % 8 != 0 { header.append(UInt8(ascii: " ")) }
        let length = UInt64(header.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + header
    }

    /// Calls `body` with the encoding in consecutive pieces of at most `chunkSize` bytes (the last may be
    /// shorter), copying through one `chunkSize` buffer: what a store needs to write a model in chunks
    /// without a second copy of it in memory.
    public func forEachEncodedChunk(chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        precondition(chunkSize > 0)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 8)
        defer { buffer.deallocate() }
        var cursor = chunkCursor()
        while case let filled = cursor.fill(buffer), filled > 0 {
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]))
        }
    }

    /// Bytes of the whole encoding.
    public var encodedByteCount: Int { headerBytes().count + weights.dataByteCount }
}
