import FederationCore
import ModelManager

// The admin API's response bodies. They are built from the store's records but are their own types, so a
// change to the storage schema is not silently a change to the API (and token hashes never leave the store).

/// A checkpoint version as `/v1/checkpoints` shows it.
public struct CheckpointView: Encodable, Sendable, Equatable {
    public var version: Int
    public var round: Int
    public var parentVersion: Int?
    public var createdAt: Double
    public var sha256: String
    public var sizeBytes: Int
    public var tensorCount: Int
    public var status: CheckpointStatus
    public var statusReason: String?
    public var integrityError: String?
    public var metrics: MetricsView

    public init(_ record: CheckpointRecord) {
        version = record.version
        round = record.round
        parentVersion = record.parentVersion
        createdAt = record.createdAt
        sha256 = record.sha256
        sizeBytes = record.sizeBytes
        tensorCount = record.tensorCount
        status = record.status
        statusReason = record.statusReason
        integrityError = record.integrityError
        metrics = MetricsView(record.metrics)
    }

    enum CodingKeys: String, CodingKey {
        case version, round, status, metrics, sha256
        case parentVersion = "parent_version"
        case createdAt = "created_at"
        case sizeBytes = "size_bytes"
        case tensorCount = "tensor_count"
        case statusReason = "status_reason"
        case integrityError = "integrity_error"
    }
}

/// What a checkpoint's round measured.
public struct MetricsView: Encodable, Sendable, Equatable {
    public var evalLoss: Double?
    public var evalMetrics: [String: Double]
    public var evalClients: Int?
    public var fitMetrics: [String: Double]
    public var clients: Int?
    public var examples: Int?

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
public struct RoundView: Encodable, Sendable, Equatable {
    public var round: Int
    public var status: RoundStatus
    public var startedAt: Double
    public var finishedAt: Double?
    public var baseVersion: Int
    public var resultVersion: Int?
    public var selected: Int
    public var answered: Int
    public var dropped: Int
    public var rejected: Int
    public var reason: String?
    public var detail: String?
    public var evalLoss: Double?
    public var evalMetrics: [String: Double]

    public init(_ record: RoundRecord) {
        round = record.round
        status = record.status
        startedAt = record.startedAt
        finishedAt = record.finishedAt
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
        case baseVersion = "base_version"
        case resultVersion = "result_version"
        case evalLoss = "eval_loss"
        case evalMetrics = "eval_metrics"
    }
}

/// An audit event as `/v1/events` shows it.
public struct EventView: Encodable, Sendable, Equatable {
    public var id: Int
    public var at: Double
    public var kind: EventKind
    public var actor: String
    public var round: Int?
    public var version: Int?
    public var traceID: String?
    public var detail: [String: String]

    public init(_ record: EventRecord) {
        id = record.id
        at = record.at
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

/// A client as operators see it: never the token hash.
public struct ClientView: Encodable, Sendable, Equatable {
    public var clientID: String
    public var name: String
    public var firstSeen: Double
    public var lastSeen: Double
    public var leftAt: Double?
    public var revokedAt: Double?

    public init(_ record: ClientRecord) {
        clientID = record.clientID
        name = record.name
        firstSeen = record.firstSeen
        lastSeen = record.lastSeen
        leftAt = record.leftAt
        revokedAt = record.revokedAt
    }

    enum CodingKeys: String, CodingKey {
        case name
        case clientID = "client_id"
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case leftAt = "left_at"
        case revokedAt = "revoked_at"
    }
}
