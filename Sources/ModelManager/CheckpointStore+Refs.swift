/// Naming versions: which names a tag may take, and reading the version list with its refs in one snapshot.
extension CheckpointStore {
    /// A tag name: [A-Za-z0-9._-]{1,64} starting with a letter or digit (so never `.`, `..` or an option like
    /// `--help`), not `current` or `best` in any case, and not a version (`12`, `v12`).
    public static func isValidTagName(_ name: String) -> Bool {
        let wellFormed =
            (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                    true
                default: false
                }
            }
        let startsWell = name.first.map { $0.isASCII && ($0.isLetter || $0.isNumber) } ?? false
        let readsAsVersion = VersionReference.versionDigits(name) != nil
        return wellFormed && startsWell && !readsAsVersion && CheckpointRef(rawValue: name.lowercased()) == nil
    }

    /// The newest `limit` checkpoints (all without one) and every ref, read in one transaction: a commit
    /// between two reads cannot show `current` on a version the list still calls a candidate.
    public func listing(limit: Int? = nil) async throws -> (checkpoints: [CheckpointRecord], refs: [String: Int]) {
        try await database.readTransaction { (try await checkpoints(limit: limit), try await refs()) }
    }
}
