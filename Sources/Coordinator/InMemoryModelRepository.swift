import FederationCore

/// Model versions in process memory: nothing survives a restart. For tests and throw-away federations.
public actor InMemoryModelRepository: ModelRepository {
    private var models: [Int: StoredModel] = [:]
    private var currentVersion: Int?
    private var lastVersion = 0

    public init() {}

    public func current() -> StoredModel? {
        currentVersion.flatMap { models[$0] }
    }

    public func model(version: Int) -> StoredModel? {
        models[version]
    }

    public func storeCandidate(round: Int, parentVersion: Int?, bytes: [UInt8], sha256: String) -> Int {
        lastVersion += 1
        models[lastVersion] = StoredModel(
            version: lastVersion, round: round, parentVersion: parentVersion, sha256: sha256, bytes: bytes,
            committed: false)
        return lastVersion
    }

    public func commit(version: Int, metrics: CommitMetrics) throws {
        guard models[version] != nil else { throw RepositoryError(message: "no model version \(version)") }
        models[version]!.committed = true
        currentVersion = version
    }

    struct RepositoryError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
