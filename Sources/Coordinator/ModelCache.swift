/// The last few model versions served, kept in memory: every selected client downloads the same one or two
/// versions per round, and reading and re-hashing them from the store for each would be wasted work.
///
/// Invariant: at most `capacity` versions, each at most once; the least recently added goes first.
struct ModelCache: Sendable {
    struct Entry: Sendable {
        var version: Int
        var bytes: [UInt8]
        var sha256: String
    }

    let capacity: Int
    private var entries: [Entry] = []

    init(capacity: Int = 3) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func model(version: Int) -> Entry? { entries.first { $0.version == version } }

    mutating func insert(version: Int, bytes: [UInt8], sha256: String) {
        entries.removeAll { $0.version == version }
        entries.append(Entry(version: version, bytes: bytes, sha256: sha256))
        if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
    }

    var versions: [Int] { entries.map(\.version) }
}
