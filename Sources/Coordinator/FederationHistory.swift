import FederationCore
import ModelManager

/// What the admin API may read from the store: checkpoints, refs, rounds, clients and audit events, as API
/// views. Read-only by construction: writes go through the `RoundDriver` (the data directory's one writer),
/// reached through `OperatorActions`. The `rondo` CLI reads a stopped coordinator's store through it too, so
/// its `--json` output has the API's shapes.
public struct FederationHistory: Sendable {
    private let store: CheckpointStore

    public init(store: CheckpointStore) {
        self.store = store
    }

    /// The version a reference (`v12`, `12`, `current`, `best`, a tag) names now.
    /// - Throws: `CheckpointStoreError` `.notFound`.
    public func resolve(_ reference: String) async throws -> Int {
        try await store.resolve(reference)
    }

    /// Rounds, newest first.
    public func rounds(limit: Int) async throws -> [RoundView] {
        try await store.rounds(limit: limit).map(RoundView.init)
    }

    public func round(_ number: Int) async throws -> RoundView? {
        try await store.round(number).map(RoundView.init)
    }

    /// Every client ever registered (departed ones up to the store's bound), most recently seen first.
    /// - Parameter contacts: the running coordinator's liveness of each client, by id.
    public func clients(contacts: [String: ClientContact] = [:]) async throws -> [ClientView] {
        try await store.clients().map { ClientView($0, contact: contacts[$0.clientID]) }
            .sorted { ($0.connected ? 1 : 0, $0.lastSeen) > ($1.connected ? 1 : 0, $1.lastSeen) }
    }

    /// `/v1/checkpoints`: the newest `limit` versions (all without one) and every ref, as one consistent read.
    public func listing(limit: Int? = nil) async throws -> CheckpointList {
        let (checkpoints, refs) = try await store.listing(limit: limit)
        return CheckpointList(checkpoints: checkpoints.map(CheckpointView.init), refs: refs)
    }

    /// A checkpoint with the refs that name it and its tensors (name, dtype, shape).
    public func detail(version: Int) async throws -> CheckpointDetail? {
        guard let checkpoint = try await checkpoint(version: version) else { return nil }
        let refs = try await refs().filter { $0.value == version }.map(\.key).sorted()
        let header = try SafeTensorsFile.decode(try await bytes(version: version)).weights
        return CheckpointDetail(
            checkpoint: checkpoint, refs: refs,
            tensors: header.tensors.map {
                TensorView(
                    name: $0.name, dtype: $0.tensor.dtype.rawValue, shape: $0.tensor.shape,
                    parameters: $0.tensor.elementCount)
            })
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
