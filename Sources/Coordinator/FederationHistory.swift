import ModelManager

/// What the admin API may read from the store: checkpoints, refs, rounds, clients and audit events, as API
/// views. Read-only by construction: writes go through the `RoundDriver` (the data directory's one writer),
/// reached through `OperatorActions`.
public struct FederationHistory: Sendable {
    private let store: CheckpointStore

    init(store: CheckpointStore) {
        self.store = store
    }

    /// Rounds, newest first.
    public func rounds(limit: Int) async throws -> [RoundView] {
        try await store.rounds(limit: limit).map(RoundView.init)
    }

    public func round(_ number: Int) async throws -> RoundView? {
        try await store.round(number).map(RoundView.init)
    }

    /// Every client ever registered, most recently seen first.
    public func clients() async throws -> [ClientView] {
        try await store.clients().map(ClientView.init)
    }

    /// Every checkpoint, newest first.
    public func checkpoints() async throws -> [CheckpointView] {
        try await store.checkpoints().map(CheckpointView.init)
    }

    public func checkpoint(version: Int) async throws -> CheckpointView? {
        try await store.checkpoint(version: version).map(CheckpointView.init)
    }

    /// The safetensors bytes of a version, checked against its hash.
    public func bytes(version: Int) async throws -> [UInt8] {
        try await store.bytes(version: version)
    }

    /// Every ref (`current`, `best`, tags) with the version it names.
    public func refs() async throws -> [String: Int] {
        try await store.refs()
    }

    /// Audit events, newest first.
    public func events(limit: Int, kind: EventKind?) async throws -> [EventView] {
        try await store.events(limit: limit, kind: kind).map(EventView.init)
    }
}
