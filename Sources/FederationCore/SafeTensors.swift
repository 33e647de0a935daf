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
        guard bytes.count >= 8 else {
            throw SafeTensorsError(.truncated, "payload has \(bytes.count) bytes; the 8-byte header length is missing")
        }
        var declared: UInt64 = 0
        for index in 0..<8 { declared |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        guard declared <= UInt64(limits.maxHeaderBytes) else {
            throw SafeTensorsError(
                .headerTooLarge, "header length \(declared) exceeds the limit of \(limits.maxHeaderBytes) bytes")
        }
        let headerLength = Int(declared)
        guard 8 + headerLength <= bytes.count else {
            throw SafeTensorsError(
                .headerBeyondBody,
                "header length \(headerLength) runs past the payload's \(bytes.count - 8) remaining bytes")
        }
        let header: JSONValue
        do {
            header = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)]))
        } catch {
            if let name = error.duplicateKey {
                throw SafeTensorsError(.duplicateName, "tensor name \"\(name)\" appears twice in the header")
            }
            throw SafeTensorsError(.invalidHeader, "header is not valid JSON: \(error)")
        }
        guard let members = header.objectMembers else {
            throw SafeTensorsError(.invalidHeader, "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart

        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: TensorDType, shape: [Int], begin: Int, end: Int)] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            if name == "__metadata__" {
                metadata = try decodeMetadata(value)
                continue
            }
            guard entries.count < limits.maxTensorCount else {
                throw SafeTensorsError(.tooManyTensors, "more than \(limits.maxTensorCount) tensors")
            }
            entries.append(try decodeEntry(name: name, value: value, dataLength: dataLength))
        }

        // The data section must be covered exactly: sorted by offset, each tensor starts where the previous ended.
        let byOffset = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for entry in byOffset {
            if entry.begin < cursor {
                throw SafeTensorsError(
                    .overlappingData,
                    "tensor \"\(entry.name)\" [\(entry.begin), \(entry.end)) overlaps bytes before \(cursor)")
            }
            if entry.begin > cursor {
                throw SafeTensorsError(.uncoveredData, "bytes [\(cursor), \(entry.begin)) belong to no tensor")
            }
            cursor = entry.end
        }
        guard cursor == dataLength else {
            throw SafeTensorsError(
                .uncoveredData, "bytes [\(cursor), \(dataLength)) of the data section belong to no tensor")
        }

        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let raw = UnsafeRawBufferPointer(rebasing: bytes[(dataStart + entry.begin)..<(dataStart + entry.end)])
            let tensor =
                entry.dtype == .float32
                ? Tensor(shape: entry.shape, values: floats(from: raw))
                : Tensor(shape: entry.shape, dtype: entry.dtype, littleEndianBytes: Array(raw))
            tensors.append(NamedTensor(name: entry.name, tensor: tensor))
        }
        return SafeTensorsFile(weights: ModelWeights(tensors), metadata: metadata)
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

    private static func decodeMetadata(_ value: JSONValue) throws(SafeTensorsError) -> [String: String] {
        guard let members = value.objectMembers else {
            throw SafeTensorsError(.invalidMetadata, "__metadata__ is not an object")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard let string = value.stringValue else {
                throw SafeTensorsError(.invalidMetadata, "__metadata__ value for \"\(key)\" is not a string")
            }
            metadata[key] = string
        }
        return metadata
    }

    private static func decodeEntry(
        name: String, value: JSONValue, dataLength: Int
    ) throws(SafeTensorsError) -> (name: String, dtype: TensorDType, shape: [Int], begin: Int, end: Int) {
        guard value.objectMembers != nil else {
            throw SafeTensorsError(.invalidHeader, "entry for tensor \"\(name)\" is not an object")
        }
        guard let dtypeName = value["dtype"]?.stringValue else {
            throw SafeTensorsError(.invalidHeader, "tensor \"\(name)\" has no string dtype")
        }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            throw SafeTensorsError(.unknownDType, "tensor \"\(name)\" has unknown dtype \"\(dtypeName)\"")
        }
        guard let dims = value["shape"]?.arrayValue else {
            throw SafeTensorsError(.invalidHeader, "tensor \"\(name)\" has no shape list")
        }
        var shape: [Int] = []
        var elements = 1
        for dim in dims {
            guard let size = dim.integerValue, size >= 0 else {
                throw SafeTensorsError(
                    .invalidShape, "tensor \"\(name)\" has a shape entry that is not a non-negative integer")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw SafeTensorsError(
                    .invalidShape, "tensor \"\(name)\" shape \(dims.map { $0.serialized() }) is too large")
            }
            elements = product
            shape.append(size)
        }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
            let begin = offsets[0].integerValue, let end = offsets[1].integerValue, begin >= 0, begin <= end
        else {
            throw SafeTensorsError(
                .invalidOffsets, "tensor \"\(name)\" needs data_offsets [begin, end] with 0 <= begin <= end")
        }
        guard end <= dataLength else {
            throw SafeTensorsError(
                .offsetOutOfRange, "tensor \"\(name)\" ends at byte \(end) but the data section has \(dataLength) bytes"
            )
        }
        guard elements * dtype.byteWidth == end - begin else {
            throw SafeTensorsError(
                .sizeMismatch,
                "tensor \"\(name)\" shape \(shape) × \(dtype.rawValue) is \(elements * dtype.byteWidth) bytes but its offsets span \(end - begin)"
            )
        }
        guard dtype.isAggregated else {
            throw SafeTensorsError(
                .unsupportedDType,
                "tensor \"\(name)\" is \(dtype.rawValue); Rondo averages F16, BF16, F32, F64, integer and BOOL tensors, "
                    + "not 8-bit floats")
        }
        return (name, dtype, shape, begin, end)
    }

    /// Reads little-endian float32 values from unaligned bytes.
    private static func floats(from raw: UnsafeRawBufferPointer) -> [Float] {
        let count = raw.count / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * 4)]))
            }
            #if _endian(big)
                for index in 0..<count {
                    buffer[index] = Float(bitPattern: UInt32(littleEndian: buffer[index].bitPattern))
                }
            #endif
            initialized = count
        }
    }

    /// Encodes to safetensors bytes: tensors in name order, contiguous, header padded with spaces to a multiple
    /// of 8 bytes (as the reference implementation does, so the data section is aligned).
    public func encoded() -> [UInt8] {
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

        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + offset)
        let length = UInt64(header.count)
        for index in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(index)))) }
        out.append(contentsOf: header)
        for named in weights.tensors {
            switch named.tensor.storage {
            case .float32(let values):
                values.withUnsafeBytes { raw in
                    #if _endian(big)
                        out.append(contentsOf: TensorElements.bytes(of: values))
                    #else
                        out.append(contentsOf: raw)
                    #endif
                }
            case .encoded(_, let bytes):
                out.append(contentsOf: bytes)
            }
        }
        return out
    }
}
