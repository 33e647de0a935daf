/// Where a checked update's tensor bytes are read from when it is folded: memory (`ModelWeights`) or, for an
/// upload that streamed in, the coordinator's spool file. The core reads through this seam and does no I/O.
public protocol UpdatePayload: Sendable {
    /// Calls `body` with tensor `index`'s little-endian bytes (index in the base model's name order), in
    /// order, in chunks that each hold a whole number of elements.
    /// - Throws: when the bytes cannot be read (a spool file lost to a disk error); the fold then fails.
    func forEachChunk(ofTensor index: Int, _ body: (UnsafeRawBufferPointer) -> Void) throws

    /// Like `forEachChunk(ofTensor:_:)`, for the bytes `byteRange` of the tensor only (a whole number of
    /// elements): aggregators that need every update at once read them block by block. The default streams the
    /// whole tensor and passes on the part in range.
    func forEachChunk(ofTensor index: Int, byteRange: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) throws
}

extension UpdatePayload {
    public func forEachChunk(ofTensor index: Int, byteRange: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void)
        throws
    {
        var offset = 0
        try forEachChunk(ofTensor: index) { chunk in
            defer { offset += chunk.count }
            let lower = max(byteRange.lowerBound, offset)
            let upper = min(byteRange.upperBound, offset + chunk.count)
            guard lower < upper else { return }
            body(UnsafeRawBufferPointer(rebasing: chunk[(lower - offset)..<(upper - offset)]))
        }
    }
}

extension ModelWeights: UpdatePayload {
    public func forEachChunk(ofTensor index: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        tensors[index].tensor.withLittleEndianBytes(body)
    }

    public func forEachChunk(ofTensor index: Int, byteRange: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) {
        tensors[index].tensor.withLittleEndianBytes { body(UnsafeRawBufferPointer(rebasing: $0[byteRange])) }
    }
}

/// A fit result that passed every check against the round's base model and may be folded.
///
/// Only `UpdateValidator` (for weights in memory) and `StreamingUpdateCheck` (for an upload checked as it
/// streamed in) create one, so holding a `CheckedUpdate` means its names, shapes, dtypes, finiteness, norm
/// and metadata were checked against the model of `baseVersion`.
public struct CheckedUpdate: Sendable {
    /// The model version the update was checked against; the round refuses it for any other base.
    public let baseVersion: Int
    public let numExamples: Int
    public let metrics: [String: Double]
    /// L2 norm of (update − base) over the floating-point tensors.
    public let norm: Double
    public let payload: any UpdatePayload

    init(baseVersion: Int, numExamples: Int, metrics: [String: Double], norm: Double, payload: any UpdatePayload) {
        self.baseVersion = baseVersion
        self.numExamples = numExamples
        self.metrics = metrics
        self.norm = norm
        self.payload = payload
    }
}
