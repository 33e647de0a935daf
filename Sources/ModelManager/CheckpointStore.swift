import Crypto
import FederationCore
import Foundation

/// Model checkpoints, refs, round history, clients and the audit log in one SQLite file.
///
/// Every checkpoint is an immutable version: its safetensors bytes are chunked below SQLite's blob limit and
/// hashed with SHA-256. Refs name versions: `current` (what the next round trains from), `best` (by the
/// configured evaluation metric) and user tags. Every change that belongs together — a commit's status, its
/// metrics and the `current` and `best` refs; a rollback's ref move and its audit event — happens in one
/// transaction, so a crash leaves the old state or the new one, never a mix. Rollback moves a ref; it never
/// copies weights.
///
/// ```swift
/// let store = try await CheckpointStore(configuration: .init(path: "rondo-data/rondo.db"))
/// let (version, _) = try await store.storeCandidate(round: 1, parentVersion: nil, bytes: bytes, tensorCount: 2)
/// try await store.commit(version: version, metrics: CheckpointMetrics(evalMetrics: ["accuracy": 0.91]))
/// ```
public actor CheckpointStore {
    /// Where the database lives and how it stores blobs.
    public struct Configuration: Sendable {
        /// Path of the SQLite file (created if missing). Default `./rondo-data/rondo.db`.
        public var path: String
        /// Bytes per blob chunk; must stay below SQLite's 1,000,000,000-byte blob limit. Default 32 MiB.
        public var chunkSize: Int
        /// How long a writer waits for another connection's lock. Default 5 s.
        public var busyTimeoutMilliseconds: Int32
        /// The evaluation metric that decides `best` (`loss` means the evaluation loss). Default `accuracy`.
        public var bestMetric: String
        /// True when larger values of `bestMetric` are better. Default true.
        public var higherIsBetter: Bool

        public init(
            path: String = "./rondo-data/rondo.db", chunkSize: Int = 32 << 20, busyTimeoutMilliseconds: Int32 = 5000,
            bestMetric: String = "accuracy", higherIsBetter: Bool = true
        ) {
            precondition(chunkSize > 0 && chunkSize < 1_000_000_000, "chunk size must be below SQLite's blob limit")
            self.path = path
            self.chunkSize = chunkSize
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.bestMetric = bestMetric
            self.higherIsBetter = higherIsBetter
        }
    }

    public nonisolated let configuration: Configuration
    let database: StoreSession
    let clock: @Sendable () -> Double

    /// The engine under this store.
    public nonisolated var dialect: SQLDialect { database.dialect }

    /// Opens the SQLite store at `configuration.path`, creating the file and its directory and applying pending
    /// migrations.
    public init(
        configuration: Configuration, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) async throws {
        let directory = (configuration.path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let connection = try SQLiteConnection(
            path: configuration.path, busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
        try await self.init(database: connection, configuration: configuration, clock: clock)
    }

    /// Opens a store on `database` (any engine) and applies pending migrations.
    /// - Parameter fence: checked inside every write transaction before it commits (see `StoreWriteFence`).
    public init(
        database: any StoreDatabase, configuration: Configuration, fence: (any StoreWriteFence)? = nil,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) async throws {
        self.configuration = configuration
        self.clock = clock
        self.database = StoreSession(database: database, fence: fence)
        try await StoreMigrations.apply(to: self.database, now: clock())
    }

    /// Lower-case hex SHA-256.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).hexString
    }

    // MARK: Writing checkpoints (new versions: CheckpointStore+Inserting.swift)

    /// Commits a candidate: records its metrics, makes it `current`, and makes it `best` when it beats the
    /// best so far — all in one transaction.
    /// - Returns: true when the version also became `best`.
    @discardableResult
    public func commit(version: Int, metrics: CheckpointMetrics) async throws -> Bool {
        let now = clock()
        return try await database.transaction {
            let record = try await requireCheckpoint(version)
            guard record.status == .candidate else {
                throw CheckpointStoreError(
                    .invalidState, "version \(version) is \(record.status.rawValue), not a candidate")
            }
            try await database.query(
                "UPDATE checkpoints SET status = 'committed', metrics_json = ? WHERE version = ?",
                [.text(try Self.json(metrics)), .integer(Int64(version))])
            try await setRef(CheckpointRef.current.rawValue, version, at: now)
            let becameBest = try await isBetterThanBest(metrics)
            if becameBest { try await setRef(CheckpointRef.best.rawValue, version, at: now) }
            return becameBest
        }
    }

    /// Marks a candidate rejected by the regression guard; `current` does not move. Writes a `guard_rejected` event.
    public func reject(version: Int, metrics: CheckpointMetrics, reason: String) async throws {
        let now = clock()
        try await database.transaction {
            let record = try await requireCheckpoint(version)
            try await database.query(
                "UPDATE checkpoints SET status = 'rejected', status_reason = ?, metrics_json = ? WHERE version = ?",
                [.text(reason), .text(try Self.json(metrics)), .integer(Int64(version))])
            try await insertEvent(
                kind: .guardRejected, actor: "coordinator", round: record.round, version: version,
                detail: ["reason": reason], at: now)
        }
    }

    /// Marks every candidate left over from an unfinished round as aborted (at start-up after a crash).
    public func abortCandidates(reason: String) async throws -> [Int] {
        try await database.transaction {
            let versions = try await database.query("SELECT version FROM checkpoints WHERE status = 'candidate'")
                .compactMap {
                    $0[0].int
                }
            try await database.query(
                "UPDATE checkpoints SET status = 'aborted', status_reason = ? WHERE status = 'candidate'",
                [.text(reason)])
            return versions
        }
    }

    /// Points `current` at an earlier version; nothing is copied. Writes a `rollback` audit event, which notes
    /// `forced` and the target's status when `force` let a rejected or aborted version through.
    /// - Throws: `notFound` for an unknown version, `integrity` for a version `verify` found corrupt or whose
    ///   bytes no longer hash to its recorded SHA-256 (re-hashed here, inside the transaction, so a version
    ///   damaged since the last `verify` cannot become current), `forceRequired` for a version the regression
    ///   guard rejected or whose round was aborted (a model nobody vouched for) without `force`, and
    ///   `invalidState` for a candidate still in flight.
    /// - Returns: the version `current` pointed at before.
    @discardableResult
    public func rollback(
        to version: Int, reason: String, actor: String, traceID: String? = nil, force: Bool = false
    ) async throws -> Int? {
        let now = clock()
        return try await database.transaction {
            let record = try await requireCheckpoint(version)
            if let error = record.integrityError {
                throw CheckpointStoreError(.integrity, "version \(version) failed verification: \(error)")
            }
            switch record.status {
            case .committed, .imported:
                break
            case .rejected, .aborted:
                guard force else {
                    throw CheckpointStoreError(
                        .forceRequired,
                        "version \(version) is \(record.status.rawValue)"
                            + (record.statusReason.map { " (\($0))" } ?? "")
                            + "; rolling back to it needs force (--force, or \"force\": true), which is recorded")
                }
            case .candidate:
                throw CheckpointStoreError(
                    .invalidState, "version \(version) is a candidate still in flight; it cannot become current")
            }
            _ = try await bytes(version: version)
            let previous = try await refVersion(.current)
            try await setRef(CheckpointRef.current.rawValue, version, at: now)
            try await insertEvent(
                kind: .rollback, actor: actor, round: nil, version: version,
                detail: [
                    "from_version": previous.map(String.init) ?? "none", "to_version": String(version),
                    "reason": reason,
                ].merging(
                    force && ![.committed, .imported].contains(record.status)
                        ? ["forced": "true", "target_status": record.status.rawValue] : [:]
                ) { own, _ in own },
                traceID: traceID, at: now)
            return previous
        }
    }

    /// Points a user tag at a version. `current` and `best` are reserved, and so are names that read as a
    /// version (`12`, `v12`): every command takes tags and version numbers alike.
    public func tag(version: Int, name: String, actor: String) async throws {
        guard Self.isValidTagName(name) else {
            throw CheckpointStoreError(
                .invalidTag, "tag \"\(name)\" is reserved, reads as a version, or is not [A-Za-z0-9._-]{1,64}")
        }
        let now = clock()
        try await database.transaction {
            _ = try await requireCheckpoint(version)
            try await setRef(name, version, at: now)
            try await insertEvent(
                kind: .tag, actor: actor, round: nil, version: version, detail: ["tag": name], at: now)
        }
    }

    // MARK: Reading checkpoints

    public func checkpoint(version: Int) async throws -> CheckpointRecord? {
        try await database.query("\(Self.checkpointColumns) WHERE version = ?", [.integer(Int64(version))]).first.map(
            Self.checkpoint)
    }

    /// Every checkpoint (or the newest `limit`), newest first.
    public func checkpoints(limit: Int? = nil) async throws -> [CheckpointRecord] {
        try await database.query(
            "\(Self.checkpointColumns) ORDER BY version DESC\(limit == nil ? "" : " LIMIT ?")",
            limit.map { [.integer(Int64($0))] } ?? []
        ).map(Self.checkpoint)
    }

    /// The version `current` or `best` names, if set.
    public func refVersion(_ ref: CheckpointRef) async throws -> Int? {
        try await refVersion(named: ref.rawValue)
    }

    /// The version a ref (`current`, `best` or a tag) names, if the ref exists.
    public func refVersion(named name: String) async throws -> Int? {
        try await database.query("SELECT version FROM refs WHERE name = ?", [.text(name)]).first?[0].int
    }

    /// Every ref, by name.
    public func refs() async throws -> [String: Int] {
        var refs: [String: Int] = [:]
        for row in try await database.query("SELECT name, version FROM refs") {
            if let name = row[0].string, let version = row[1].int { refs[name] = version }
        }
        return refs
    }

    /// The stored bytes of a version, checked against its SHA-256.
    /// - Throws: `notFound`, or `integrity` when the bytes do not hash to the recorded value.
    public func bytes(version: Int) async throws -> [UInt8] {
        let record = try await requireCheckpoint(version)
        let bytes = try await rawBytes(version, expectedCount: record.sizeBytes)
        let digest = Self.sha256Hex(bytes)
        guard digest == record.sha256, bytes.count == record.sizeBytes else {
            throw CheckpointStoreError(.integrity, "version \(version) hashes to \(digest), recorded \(record.sha256)")
        }
        return bytes
    }

    /// Commits a small real write (the `current` ref rewritten with its own value): succeeds only when the
    /// database file and its journal accept writes again.
    public func probeWrite() async throws {
        try await database.transaction {
            try await database.query("UPDATE refs SET version = version WHERE name = 'current'")
        }
    }

    /// Runs one statement on whichever engine the store is on (tests read and damage tables with it).
    @discardableResult
    func rawQuery(_ sql: String, _ parameters: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await database.transaction { try await database.query(sql, parameters) }
    }

    /// Runs `body` on the store's SQLite connection while no other statement runs (tests use it to simulate a
    /// full disk or a broken table).
    func withConnection<T>(_ body: (SQLiteConnection) throws -> T) async throws -> T {
        guard let connection = database.database as? SQLiteConnection else {
            throw CheckpointStoreError(.invalidState, "this store is not on SQLite")
        }
        return try await database.exclusively { try body(connection) }
    }

    /// A version's chunks, concatenated into one array sized up front (`expectedCount`, the recorded size),
    /// so reading a model costs the model and one chunk, not a copy per chunk and per growth of the array.
    func rawBytes(_ version: Int, expectedCount: Int = 0) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        // The recorded size is only a hint: a damaged row must not make this reserve absurd amounts.
        bytes.reserveCapacity(min(max(expectedCount, 0), Int(UInt32.max)))
        try await forEachChunk(version) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Hands a version's stored chunks to `body` in order, in place (valid only during the call).
    func forEachChunk(_ version: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await database.forEachBlob(
            "SELECT data FROM checkpoint_chunks WHERE version = ? ORDER BY idx", [.integer(Int64(version))], body)
    }

    // MARK: Internals

    func requireCheckpoint(_ version: Int) async throws -> CheckpointRecord {
        guard let record = try await checkpoint(version: version) else {
            throw CheckpointStoreError(.notFound, "no checkpoint version \(version)")
        }
        return record
    }

    func setRef(_ name: String, _ version: Int, at now: Double) async throws {
        try await database.query(
            "INSERT INTO refs (name, version, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
            [.text(name), .integer(Int64(version)), .real(now)])
    }

    func isBetterThanBest(_ metrics: CheckpointMetrics) async throws -> Bool {
        guard let value = metrics.value(of: configuration.bestMetric) else { return false }
        guard let best = try await refVersion(.best), let bestRecord = try await checkpoint(version: best),
            let bestValue = bestRecord.metrics.value(of: configuration.bestMetric)
        else { return true }
        return configuration.higherIsBetter ? value > bestValue : value < bestValue
    }

    func insertEvent(
        kind: EventKind, actor: String, round: Int?, version: Int?, detail: [String: String], traceID: String? = nil,
        at now: Double
    ) async throws {
        try await database.query(
            "INSERT INTO events (at, kind, actor, round, version, trace_id, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                .real(now), .text(kind.rawValue), .text(actor), round.map { .integer(Int64($0)) } ?? .null,
                version.map { .integer(Int64($0)) } ?? .null, traceID.map { .text($0) } ?? .null,
                .text(try Self.json(detail)),
            ])
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static let checkpointColumns = """
        SELECT version, round, parent_version, created_at, sha256, size_bytes, tensor_count, status, status_reason,
            integrity_error, metrics_json, strategy_json FROM checkpoints
        """

    static func checkpoint(_ row: [SQLValue]) -> CheckpointRecord {
        CheckpointRecord(
            version: row[0].int ?? 0, round: row[1].int ?? 0, parentVersion: row[2].int, createdAt: row[3].double ?? 0,
            sha256: row[4].string ?? "", sizeBytes: row[5].int ?? 0, tensorCount: row[6].int ?? 0,
            status: CheckpointStatus(rawValue: row[7].string ?? "") ?? .aborted, statusReason: row[8].string,
            integrityError: row[9].string,
            metrics: (try? JSONDecoder().decode(CheckpointMetrics.self, from: Data((row[10].string ?? "{}").utf8)))
                ?? CheckpointMetrics(),
            strategy: row[11].string.flatMap { try? JSONDecoder().decode(StrategyRecord.self, from: Data($0.utf8)) })
    }

    static let roundColumns = """
        SELECT round, status, started_at, finished_at, base_version, result_version, selected, answered, dropped,
            rejected, reason, detail, eval_loss, eval_metrics_json FROM rounds
        """

    static func round(_ row: [SQLValue]) -> RoundRecord {
        RoundRecord(
            round: row[0].int ?? 0, status: RoundStatus(rawValue: row[1].string ?? "") ?? .aborted,
            startedAt: row[2].double ?? 0, finishedAt: row[3].double, baseVersion: row[4].int ?? 0,
            resultVersion: row[5].int, selected: row[6].int ?? 0, answered: row[7].int ?? 0, dropped: row[8].int ?? 0,
            rejected: row[9].int ?? 0, reason: row[10].string, detail: row[11].string, evalLoss: row[12].double,
            evalMetrics: (try? JSONDecoder().decode([String: Double].self, from: Data((row[13].string ?? "{}").utf8)))
                ?? [:])
    }
}
