import FederationCore

/// A model as stored: its version, the safetensors bytes served to clients, and their SHA-256.
public struct StoredModel: Sendable {
    public var version: Int
    public var round: Int
    public var parentVersion: Int?
    /// Lower-case hex SHA-256 of `bytes`; the download ETag.
    public var sha256: String
    /// The safetensors encoding, exactly as served.
    public var bytes: [UInt8]
    public var committed: Bool

    public init(version: Int, round: Int, parentVersion: Int?, sha256: String, bytes: [UInt8], committed: Bool) {
        self.version = version
        self.round = round
        self.parentVersion = parentVersion
        self.sha256 = sha256
        self.bytes = bytes
        self.committed = committed
    }
}

/// Where the coordinator keeps model versions.
///
/// The seam between the round engine and storage: `InMemoryModelRepository` serves tests and throw-away
/// federations; the SQLite checkpoint store implements the same calls durably. A candidate is stored before
/// evaluation (clients must be able to download it) and becomes current only through `commit`.
public protocol ModelRepository: Sendable {
    /// The current (last committed) model, or nil for an empty store.
    func current() async throws -> StoredModel?
    /// Any stored version, committed or not.
    func model(version: Int) async throws -> StoredModel?
    /// Stores a new version that is not yet current; returns its version number.
    func storeCandidate(round: Int, parentVersion: Int?, bytes: [UInt8], sha256: String) async throws -> Int
    /// Makes a stored version the current model.
    func commit(version: Int, metrics: CommitMetrics) async throws
}

/// What a commit records about the round that produced the model.
public struct CommitMetrics: Sendable, Equatable {
    public var evaluation: EvaluationSummary?
    public var fitMetrics: [String: Double]
    public var examples: Int

    public init(evaluation: EvaluationSummary?, fitMetrics: [String: Double], examples: Int) {
        self.evaluation = evaluation
        self.fitMetrics = fitMetrics
        self.examples = examples
    }
}
