import Crypto
import FederationCore

/// Bytes to store as chunks: an array, or a model encoded straight from its tensors.
enum ChunkSource {
    case bytes([UInt8])
    case file(SafeTensorsFile)
}

/// Writing a blob as numbered chunks of `chunkSize`, hashed on the way, through one reusable buffer: a model
/// is never copied whole, whichever database the chunks go to.
extension CheckpointStore {
    /// Writes `source` into `table` as the chunks of `version`, inside the caller's transaction.
    /// - Returns: the SHA-256 of everything written, and how many bytes that was.
    func writeChunks(_ source: ChunkSource, to table: ChunkTable, version: Int) async throws -> (
        sha256: String, byteCount: Int
    ) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: configuration.chunkSize, alignment: 8)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        var index = 0
        var written = 0
        let fill = Self.filler(for: source)
        while case let count = fill(buffer), count > 0 {
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            hasher.update(bufferPointer: chunk)
            try await database.insertChunk(table, version: version, index: index, data: chunk)
            index += 1
            written += count
        }
        return (hasher.finalize().hexString, written)
    }

    /// A function that fills a buffer with the next piece of `source` and says how much it wrote (0 at the end).
    private static func filler(for source: ChunkSource) -> (UnsafeMutableRawBufferPointer) -> Int {
        switch source {
        case .bytes(let bytes):
            var offset = 0
            return { buffer in
                let count = min(buffer.count, bytes.count - offset)
                guard count > 0 else { return 0 }
                bytes.withUnsafeBytes { raw in
                    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)]))
                }
                offset += count
                return count
            }
        case .file(let file):
            var cursor = file.chunkCursor()
            return { buffer in cursor.fill(buffer) }
        }
    }
}
