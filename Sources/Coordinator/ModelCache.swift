import NIOCore

/// The last few model versions served, kept in memory: every selected client downloads the same one or two
/// versions per round, and reading and re-hashing them from the store for each would be wasted work.
///
/// Each version is one read-only `ByteBuffer` that every download of it shares (a response, or a `Range` of
/// one, is a slice of the same storage): serving K clients costs no copy of the model per request.
///
/// Invariant: at most `capacity` versions, each at most once; the least recently added goes first.
struct ModelCache: Sendable {
    struct Entry: Sendable {
        var version: Int
        var bytes: ByteBuffer
        var sha256: String
    }

    let capacity: Int
    private var entries: [Entry] = []

    init(capacity: Int = 3) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func model(version: Int) -> Entry? { entries.first { $0.version == version } }

    /// Keeps `bytes` (copied once into the buffer every download of this version shares).
    @discardableResult
    mutating func insert(version: Int, bytes: [UInt8], sha256: String) -> ByteBuffer {
        let buffer = ByteBuffer(bytes: bytes)
        entries.removeAll { $0.version == version }
        entries.append(Entry(version: version, bytes: buffer, sha256: sha256))
        if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        return buffer
    }

    var versions: [Int] { entries.map(\.version) }
}
