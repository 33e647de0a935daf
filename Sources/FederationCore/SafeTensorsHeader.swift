/// The header of a safetensors file: what each tensor is and where its bytes lie in the data section.
///
/// Parsed on its own so an upload can be checked against the round's model before any tensor byte arrives;
/// `SafeTensorsFile.decode` uses the same parser for whole payloads. Every check the format needs is made
/// here, so a header that parses describes a data section of exactly `dataByteCount` bytes, each byte
/// belonging to exactly one tensor.
public struct SafeTensorsHeader: Sendable, Equatable {
    /// One tensor's declaration.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: TensorDType
        public var shape: [Int]
        /// Where the tensor's bytes lie, relative to the start of the data section.
        public var dataRange: Range<Int>
    }

    /// The tensors, in data-section order (by offset).
    public var entries: [Entry]
    /// Free-form string metadata (`__metadata__`).
    public var metadata: [String: String]
    /// Bytes the data section must have: the end of the last tensor.
    public var dataByteCount: Int { entries.last?.dataRange.upperBound ?? 0 }

    /// The JSON header's length, read from the file's first 8 bytes (little-endian), checked against `limits`.
    /// - Throws: `truncated` with fewer than 8 bytes, `headerTooLarge` beyond the limit.
    public static func declaredLength(_ prefix: UnsafeRawBufferPointer, limits: SafeTensorsLimits)
        throws(SafeTensorsError)
        -> Int
    {
        guard prefix.count >= 8 else {
            throw SafeTensorsError(.truncated, "payload has \(prefix.count) bytes; the 8-byte header length is missing")
        }
        var declared: UInt64 = 0
        for index in 0..<8 { declared |= UInt64(prefix[index]) << (8 * UInt64(index)) }
        guard declared <= UInt64(limits.maxHeaderBytes) else {
            throw SafeTensorsError(
                .headerTooLarge, "header length \(declared) exceeds the limit of \(limits.maxHeaderBytes) bytes")
        }
        return Int(declared)
    }

    /// Reads the header of a whole safetensors payload: its length, then the JSON, checked against the
    /// payload's data section.
    /// - Returns: the header and where the data section starts in `payload`.
    /// - Throws: `SafeTensorsError` naming the first problem found.
    public static func read(wholePayload payload: UnsafeRawBufferPointer, limits: SafeTensorsLimits = .default)
        throws(SafeTensorsError) -> (header: SafeTensorsHeader, dataStart: Int)
    {
        let headerLength = try declaredLength(payload, limits: limits)
        guard 8 + headerLength <= payload.count else {
            throw SafeTensorsError(
                .headerBeyondBody,
                "header length \(headerLength) runs past the payload's \(payload.count - 8) remaining bytes")
        }
        let dataStart = 8 + headerLength
        let header = try parse(
            json: UnsafeRawBufferPointer(rebasing: payload[8..<dataStart]), dataLength: payload.count - dataStart,
            limits: limits)
        return (header, dataStart)
    }

    /// Parses and checks the JSON header.
    /// - Parameter dataLength: the data section's length when the whole payload is at hand; nil while it is
    ///   still arriving (the caller then checks that exactly `dataByteCount` bytes follow).
    /// - Throws: `SafeTensorsError` naming the first problem found.
    public static func parse(json: UnsafeRawBufferPointer, dataLength: Int?, limits: SafeTensorsLimits = .default)
        throws(SafeTensorsError) -> SafeTensorsHeader
    {
        let header: JSONValue
        do {
            header = try JSONParser.parse(json)
        } catch {
            if let name = error.duplicateKey {
                throw SafeTensorsError(.duplicateName, "tensor name \"\(name)\" appears twice in the header")
            }
            throw SafeTensorsError(.invalidHeader, "header is not valid JSON: \(error)")
        }
        guard let members = header.objectMembers else {
            throw SafeTensorsError(.invalidHeader, "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
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
        entries.sort {
            ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound)
        }
        var cursor = 0
        for entry in entries {
            if entry.dataRange.lowerBound < cursor {
                throw SafeTensorsError(
                    .overlappingData,
                    "tensor \"\(entry.name)\" [\(entry.dataRange.lowerBound), \(entry.dataRange.upperBound)) overlaps bytes before \(cursor)"
                )
            }
            if entry.dataRange.lowerBound > cursor {
                throw SafeTensorsError(
                    .uncoveredData, "bytes [\(cursor), \(entry.dataRange.lowerBound)) belong to no tensor")
            }
            cursor = entry.dataRange.upperBound
        }
        if let dataLength, cursor != dataLength {
            throw SafeTensorsError(
                .uncoveredData, "bytes [\(cursor), \(dataLength)) of the data section belong to no tensor")
        }
        return SafeTensorsHeader(entries: entries, metadata: metadata)
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
        name: String, value: JSONValue, dataLength: Int?
    ) throws(SafeTensorsError) -> Entry {
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
        if let dataLength, end > dataLength {
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
        return Entry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }
}
