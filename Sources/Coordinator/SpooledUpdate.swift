import FederationCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The data section of one upload, spooled to an unnamed file in the data directory while it was checked.
///
/// The file is unlinked the moment it is created, so it has no name: it holds disk space only while this
/// object lives (until the update is folded, or until its round ends when a weight cap keeps it aside), and a
/// crash leaves nothing behind to clean up. The fold reads it back chunk by chunk (`UpdatePayload`), so an
/// update never sits in memory whole.
final class SpooledUpdate: UpdatePayload, Sendable {
    /// Bytes read back per `pread`: large enough to stream at disk speed, small enough to be O(1) per upload
    /// and to come from the heap (below the 1 MiB mmap threshold `rondo serve` sets).
    static let readChunkBytes = 512 << 10

    private let descriptor: Int32
    /// Each tensor's byte range in the file, in the base model's name order.
    private let tensorRanges: [Range<Int>]

    /// Creates an unnamed spool file in `directory` for the data section `header` describes.
    /// - Throws: `SpoolError` when the file cannot be created.
    init(in directory: String, header: SafeTensorsHeader) throws {
        let path = (directory as NSString).appendingPathComponent(".upload-\(UUID().uuidString)")
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw SpoolError("cannot create a spool file in \(directory): \(SpoolError.errno())")
        }
        unlink(path)
        self.descriptor = descriptor
        self.tensorRanges = header.entries.sorted { $0.name < $1.name }.map(\.dataRange)
    }

    deinit { close(descriptor) }

    func forEachChunk(ofTensor index: Int, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        try read(tensorRanges[index], body)
    }

    func forEachChunk(ofTensor index: Int, byteRange: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        let tensor = tensorRanges[index]
        precondition(byteRange.upperBound <= tensor.count, "range past the tensor's end")
        try read((tensor.lowerBound + byteRange.lowerBound)..<(tensor.lowerBound + byteRange.upperBound), body)
    }

    /// Reads the file's bytes `range` in chunks of whole elements.
    private func read(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        guard !range.isEmpty else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: min(Self.readChunkBytes, range.count), alignment: 16)
        defer { buffer.deallocate() }
        var position = range.lowerBound
        while position < range.upperBound {
            let wanted = min(buffer.count, range.upperBound - position)
            let read = pread(descriptor, buffer.baseAddress, wanted, off_t(position))
            if read < 0, errno == EINTR { continue }
            guard read > 0 else {
                throw SpoolError(
                    read == 0
                        ? "spool file ended early at byte \(position)"
                        : "reading the spool file failed: \(SpoolError.errno())")
            }
            // Chunks hold whole elements: `readChunkBytes` is a multiple of every width, and so is a short read
            // only at the tensor's end; a short read mid-tensor is completed by the next pass.
            let whole = read == wanted ? read : read / 8 * 8
            guard whole > 0 else { continue }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<whole]))
            position += whole
        }
    }

    /// Appends `bytes` to the spool file (while the upload arrives; the fold reads only after the last append).
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var position = 0
        while position < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + position, bytes.count - position)
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { throw SpoolError("writing the spool file failed: \(SpoolError.errno())") }
            position += written
        }
    }
}

/// The spool file could not be created, written or read (a full or failing disk).
struct SpoolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
    static func errno() -> String { String(cString: strerror(Glibc.errno)) }
}
