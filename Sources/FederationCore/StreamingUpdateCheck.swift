/// Checks a fit result while its bytes arrive, so an upload is never held whole.
///
/// The header is checked first, before any tensor byte: names, shapes and dtypes against the round's base
/// model and the `__metadata__` (`num_examples`, `metrics`). The data section is then fed in as it arrives,
/// in chunks of any size: every floating-point element is checked to be finite and its squared distance to
/// the base model added up, so a NaN or an over-norm update is refused at the chunk that shows it. `finish`
/// checks that the data section was complete and hands back a `CheckedUpdate` for the fold.
///
/// The same rules as `UpdateValidator` apply, with the same rejection reasons, so a result gets the same
/// verdict whichever path it took.
public struct StreamingUpdateCheck: Sendable {
    /// The declared tensors, in data-section order.
    public let header: SafeTensorsHeader
    public let numExamples: Int
    public let metrics: [String: Double]
    private let base: GlobalModel
    private let validator: UpdateValidator
    /// For each entry of `header`, the index of its tensor in the base model.
    private let baseIndex: [Int]
    private var entry = 0
    private var offsetInEntry = 0
    /// The first bytes of an element split across two chunks (fewer than 8).
    private var carry: [UInt8] = []
    private var squaredNorm = 0.0
    /// Data-section bytes consumed so far.
    public private(set) var received = 0

    /// Checks the header against `base`.
    /// - Throws: `UpdateRejection` — `wrongNames`, `wrongShape`, `wrongDType` or `malformed` (metadata).
    public init(header: SafeTensorsHeader, base: GlobalModel, validator: UpdateValidator) throws(UpdateRejection) {
        let byName = header.entries.indices.sorted { header.entries[$0].name < header.entries[$1].name }
        try UpdateValidator.checkLayout(
            byName.map { (header.entries[$0].name, header.entries[$0].dtype, header.entries[$0].shape) },
            against: base.weights)
        (numExamples, metrics) = try FitResult.read(metadata: header.metadata)
        var baseIndex = [Int](repeating: 0, count: header.entries.count)
        for (layoutIndex, entryIndex) in byName.enumerated() { baseIndex[entryIndex] = layoutIndex }
        self.header = header
        self.base = base
        self.validator = validator
        self.baseIndex = baseIndex
        skipEmptyEntries()
    }

    /// Bytes of the data section still expected.
    public var remaining: Int { header.dataByteCount - received }

    /// Checks the next bytes of the data section.
    /// - Throws: `UpdateRejection` — `nonFinite` naming the tensor, `normTooLarge` once the distance so far
    ///   passes the bound, `malformed` when the body is longer than the header declares.
    public mutating func consume(_ chunk: UnsafeRawBufferPointer) throws(UpdateRejection) {
        guard chunk.count <= remaining else {
            throw UpdateRejection(
                .malformed, "the body has more than the \(header.dataByteCount) data bytes its header declares")
        }
        received += chunk.count
        var position = 0
        while position < chunk.count {
            let width = header.entries[entry].dtype.byteWidth
            if !carry.isEmpty {
                let taken = min(width - carry.count, chunk.count - position)
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[position..<(position + taken)]))
                position += taken
                if carry.count == width {
                    let element = carry
                    carry.removeAll(keepingCapacity: true)
                    if let rejection = element.withUnsafeBytes({ check($0) }) { throw rejection }
                }
                continue
            }
            let available = min(chunk.count - position, header.entries[entry].dataRange.count - offsetInEntry)
            let whole = available / width * width
            if whole > 0 {
                if let rejection = check(UnsafeRawBufferPointer(rebasing: chunk[position..<(position + whole)])) {
                    throw rejection
                }
                position += whole
            } else {
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[position..<(position + available)]))
                position += available
            }
        }
    }

    /// The checked update, once the whole data section arrived.
    /// - Parameter payload: where the fold reads the bytes that were checked (they must be those bytes).
    /// - Throws: `UpdateRejection(.malformed)` when the body ended early; `normTooLarge`.
    public func finish(payload: any UpdatePayload) throws(UpdateRejection) -> CheckedUpdate {
        guard remaining == 0 else {
            throw UpdateRejection(
                .malformed,
                "the body ended after \(received) of the \(header.dataByteCount) data bytes its header declares")
        }
        let norm = try validator.checkNorm(squaredNorm: squaredNorm)
        return CheckedUpdate(
            baseVersion: base.version, numExamples: numExamples, metrics: metrics, norm: norm, payload: payload)
    }

    /// Checks whole elements of the current entry, starting at `offsetInEntry`, and moves past them.
    /// - Returns: why the update is refused, if these elements show it.
    private mutating func check(_ raw: UnsafeRawBufferPointer) -> UpdateRejection? {
        let declared = header.entries[entry]
        if declared.dtype.isFloatingPoint {
            let offset = offsetInEntry
            let (finite, squared) = base.weights.tensors[baseIndex[entry]].tensor.withLittleEndianBytes { reference in
                TensorElements.squaredDistance(
                    raw: raw, base: UnsafeRawBufferPointer(rebasing: reference[offset..<(offset + raw.count)]),
                    dtype: declared.dtype)
            }
            guard finite else {
                return UpdateRejection(.nonFinite, "tensor \"\(declared.name)\" contains NaN or infinity")
            }
            squaredNorm += squared
            if let bound = validator.maxUpdateNorm, squaredNorm > bound * bound {
                do {
                    _ = try validator.checkNorm(squaredNorm: squaredNorm)
                } catch {
                    return error
                }
            }
        }
        offsetInEntry += raw.count
        if offsetInEntry == declared.dataRange.count {
            entry += 1
            offsetInEntry = 0
            skipEmptyEntries()
        }
        return nil
    }

    private mutating func skipEmptyEntries() {
        while entry < header.entries.count, header.entries[entry].dataRange.isEmpty { entry += 1 }
    }
}
