import FederationCore
import ModelManager

// The admin API's response bodies. They are built from the store's records but are their own types, so a
// change to the storage schema is not silently a change to the API (and token hashes never leave the store).

/// A checkpoint version as `/v1/checkpoints` shows it.
public struct CheckpointView: Codable, Sendable, Equatable {
    public var version: Int
    public var round: Int
    @Nullable public var parentVersion: Int?
    public var createdAt: Timestamp
    public var sha256: String
    public var sizeBytes: Int
    public var tensorCount: Int
    public var status: CheckpointStatus
    @Nullable public var statusReason: String?
    @Nullable public var integrityError: String?
    public var metrics: MetricsView
    /// The strategy the version was aggregated with; null for imported versions and ones made before
    /// strategies were recorded.
    @Nullable public var strategy: StrategyView?

    public init(_ record: CheckpointRecord) {
        version = record.version
        round = record.round
        parentVersion = record.parentVersion
        createdAt = Timestamp(secondsSince1970: record.createdAt)
        sha256 = record.sha256
        sizeBytes = record.sizeBytes
        tensorCount = record.tensorCount
        status = record.status
        statusReason = record.statusReason
        integrityError = record.integrityError
        metrics = MetricsView(record.metrics)
        strategy = record.strategy.map { StrategyView(name: $0.name, parameters: $0.parameters, privacy: $0.privacy) }
    }

    enum CodingKeys: String, CodingKey {
        case version, round, status, metrics, sha256, strategy
        case parentVersion = "parent_version"
        case createdAt = "created_at"
        case sizeBytes = "size_bytes"
        case tensorCount = "tensor_count"
        case statusReason = "status_reason"
        case integrityError = "integrity_error"
    }
}

/// What a checkpoint's round measured.
public struct MetricsView: Codable, Sendable, Equatable {
    @Nullable public var evalLoss: Double?
    public var evalMetrics: [String: Double]
    @Nullable public var evalClients: Int?
    public var fitMetrics: [String: Double]
    @Nullable public var clients: Int?
    @Nullable public var examples: Int?

    public init(_ metrics: CheckpointMetrics) {
        evalLoss = metrics.evalLoss
        evalMetrics = metrics.evalMetrics
        evalClients = metrics.evalClients
        fitMetrics = metrics.fitMetrics
        clients = metrics.clients
        examples = metrics.examples
    }

    enum CodingKeys: String, CodingKey {
        case evalLoss = "eval_loss"
        case evalMetrics = "eval_metrics"
        case evalClients = "eval_clients"
        case fitMetrics = "fit_metrics"
        case clients, examples
    }
}

/// A round as `/v1/rounds` shows it.
public struct RoundView: Codable, Sendable, Equatable {
    public var round: Int
    public var status: RoundStatus
    public var startedAt: Timestamp
    @Nullable public var finishedAt: Timestamp?
    /// Seconds from start to finish (nil while running).
    @Nullable public var durationSeconds: Double?
    public var baseVersion: Int
    @Nullable public var resultVersion: Int?
    public var selected: Int
    public var answered: Int
    public var dropped: Int
    public var rejected: Int
    @Nullable public var reason: String?
    @Nullable public var detail: String?
    @Nullable public var evalLoss: Double?
    public var evalMetrics: [String: Double]

    public init(_ record: RoundRecord) {
        round = record.round
        status = record.status
        startedAt = Timestamp(secondsSince1970: record.startedAt)
        finishedAt = record.finishedAt.map { Timestamp(secondsSince1970: $0) }
        durationSeconds = record.finishedAt.map { $0 - record.startedAt }
        baseVersion = record.baseVersion
        resultVersion = record.resultVersion
        selected = record.selected
        answered = record.answered
        dropped = record.dropped
        rejected = record.rejected
        reason = record.reason
        detail = record.detail
        evalLoss = record.evalLoss
        evalMetrics = record.evalMetrics
    }

    enum CodingKeys: String, CodingKey {
        case round, status, selected, answered, dropped, rejected, reason, detail
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case durationSeconds = "duration_seconds"
        case baseVersion = "base_version"
        case resultVersion = "result_version"
        case evalLoss = "eval_loss"
        case evalMetrics = "eval_metrics"
    }
}

/// An audit event as `/v1/events` shows it.
public struct EventView: Codable, Sendable, Equatable {
    public var id: Int
    public var at: Timestamp
    public var kind: EventKind
    public var actor: String
    @Nullable public var round: Int?
    @Nullable public var version: Int?
    @Nullable public var traceID: String?
    public var detail: [String: String]

    public init(_ record: EventRecord) {
        id = record.id
        at = Timestamp(secondsSince1970: record.at)
        kind = record.kind
        actor = record.actor
        round = record.round
        version = record.version
        traceID = record.traceID
        detail = record.detail
    }

    enum CodingKeys: String, CodingKey {
        case id, at, kind, actor, round, version, detail
        case traceID = "trace_id"
    }
}

/// Where a client stands, as `rondo clients` and `/v1/clients` show it.
public enum ClientPresence: String, Codable, Sendable, CaseIterable {
    /// Heard from within the liveness timeout (a parked long-poll counts): it can be selected.
    case connected
    /// Enrolled, but not heard from within the liveness timeout (or not since the coordinator started).
    case silent
    /// Left on purpose (`DELETE /v1/clients/{id}`, a client's clean shutdown).
    case left
    /// Revoked by an operator, for good.
    case revoked
}

/// A client as operators see it: never the token hash.
public struct ClientView: Codable, Sendable, Equatable {
    public var clientID: String
    public var name: String
    public var presence: ClientPresence
    /// Shortcut for `presence == .connected`.
    public var connected: Bool
    public var firstSeen: Timestamp
    /// The last request of any kind (polls, heartbeats, results), as the running coordinator saw it; without a
    /// running coordinator, the last time one recorded.
    public var lastSeen: Timestamp
    @Nullable public var leftAt: Timestamp?
    @Nullable public var revokedAt: Timestamp?
    /// True when the client registers under an identity key (a restart keeps its id).
    public var hasIdentityKey: Bool

    /// - Parameter contact: what the running coordinator knows of the client now (nil without one, or for a
    ///   client it does not hold).
    public init(_ record: ClientRecord, contact: ClientContact? = nil) {
        clientID = record.clientID
        name = record.name
        firstSeen = Timestamp(secondsSince1970: record.firstSeen)
        lastSeen = Timestamp(secondsSince1970: max(record.lastSeen, contact?.lastSeen.secondsSince1970 ?? 0))
        leftAt = record.leftAt.map { Timestamp(secondsSince1970: $0) }
        revokedAt = record.revokedAt.map { Timestamp(secondsSince1970: $0) }
        hasIdentityKey = record.identitySHA256 != nil
        presence =
            record.revokedAt != nil
            ? .revoked : record.leftAt != nil ? .left : contact?.connected == true ? .connected : .silent
        connected = presence == .connected
    }

    enum CodingKeys: String, CodingKey {
        case name, presence, connected
        case clientID = "client_id"
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case leftAt = "left_at"
        case revokedAt = "revoked_at"
        case hasIdentityKey = "has_identity_key"
    }
}

/// What the running coordinator knows of a client's liveness right now.
public struct ClientContact: Sendable, Equatable {
    public var connected: Bool
    public var lastSeen: Timestamp
}

/// One page of `/v1/clients`: a slice of every enrolled client in the listing's order (connected first, then by
/// last contact), with the totals, so 50,000 enrolled clients are listed a bounded page at a time.
public struct ClientPage: Codable, Sendable, Equatable {
    public var clients: [ClientView]
    /// Clients in the whole listing.
    public var total: Int
    /// Connected clients in the whole listing.
    public var connected: Int
    /// The `offset` of the next page; null on the last page.
    @Nullable public var nextOffset: Int?

    /// The page of `all` from `offset`, at most `limit` long.
    public init(_ all: [ClientView], offset: Int, limit: Int) {
        let start = min(offset, all.count)
        let end = min(start + limit, all.count)
        clients = Array(all[start..<end])
        total = all.count
        connected = all.count { $0.connected }
        nextOffset = end < all.count ? end : nil
    }

    enum CodingKeys: String, CodingKey {
        case clients, total, connected
        case nextOffset = "next_offset"
    }
}
