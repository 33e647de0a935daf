/// Reads a file's safetensors encoding out a buffer at a time, in order: header, then each tensor's bytes.
///
/// The pull-shaped twin of `SafeTensorsFile.forEachEncodedChunk`, for writers that suspend between chunks (a
/// database driver awaiting the server): the caller owns the buffer and asks for the next piece when it is
/// ready, and no second copy of the model is ever built.
public struct SafeTensorsChunkCursor {
    private let file: SafeTensorsFile
    private let header: [UInt8]
    /// 0 is the header; `n` is tensor `n - 1`; past the last tensor the encoding is done.
    private var part = 0
    /// Bytes of the current part already handed out.
    private var offset = 0

    init(_ file: SafeTensorsFile) {
        self.file = file
        self.header = file.headerBytes()
    }

    /// Fills `buffer` from where the last call stopped.
    /// - Returns: how many bytes were written: `buffer.count` except for the last piece, and 0 once the
    ///   encoding is done.
    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        var filled = 0
        let tensors = file.weights.tensors
        while filled < buffer.count, part <= tensors.count {
            let (taken, partSize): (Int, Int)
            if part == 0 {
                (taken, partSize) = header.withUnsafeBytes { raw in
                    (Self.copy(raw, from: offset, into: buffer, at: filled), raw.count)
                }
            } else {
                (taken, partSize) = tensors[part - 1].tensor.withLittleEndianBytes { raw in
                    (Self.copy(raw, from: offset, into: buffer, at: filled), raw.count)
                }
            }
            filled += taken
            offset += taken
            if offset == partSize {
                part += 1
                offset = 0
            }
        }
        return filled
    }

    private static func copy(
        _ source: UnsafeRawBufferPointer, from offset: Int, into buffer: UnsafeMutableRawBufferPointer, at filled: Int
    ) -> Int {
        let taken = min(buffer.count - filled, source.count - offset)
        guard taken > 0 else { return 0 }
        UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + taken)]).copyMemory(
            from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + taken)]))
        return taken
    }
}

extension SafeTensorsFile {
    /// A cursor over this file's encoding (see `SafeTensorsChunkCursor`).
    public func chunkCursor() -> SafeTensorsChunkCursor { SafeTensorsChunkCursor(self) }
}
