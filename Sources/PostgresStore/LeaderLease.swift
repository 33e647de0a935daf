import Logging
import ModelManager
import Synchronization

/// The leader lease several coordinators on one PostgreSQL database compete for, and the fence on the leader's
/// writes.
///
/// One row (`leader_lease`) names the holder, its epoch and when the lease expires, on the database server's
/// clock. A coordinator takes the lease when the row is missing or expired, raising the epoch by one; the
/// leader renews it every `ttl / 3`. As a `StoreWriteFence`, the lease re-reads the row `FOR SHARE` inside
/// every write transaction, just before it commits: if the epoch is no longer the one this process took, the
/// write rolls back. A leader that was paused or cut off past its lease therefore never commits after a
/// standby took over, whatever its own clock or state says, and a standby (which holds no epoch) never
/// writes at all.
public final class LeaderLease: StoreWriteFence {
    /// What the lease row says.
    public struct Holder: Sendable, Equatable {
        public var holder: String
        /// The leader's URL for clients and operators, if it published one.
        public var address: String?
        public var epoch: Int64
        /// Seconds since the leader last renewed, on the database's clock.
        public var secondsSinceRenewal: Double
        /// Whether the lease has run out (the leader is presumed gone).
        public var expired: Bool
    }

    /// The lease row's key: one coordinator leads each database.
    static let name = "coordinator"

    /// This process's identity in the row (host, pid and a random suffix: a restarted process is a new holder).
    public let holder: String
    /// The URL this process publishes while it leads.
    public let address: String?
    /// How long a lease lasts without renewal. Takeover happens within about this much of the leader's death.
    public let ttl: Duration
    private let database: PostgresDatabase
    private let logger: Logger
    /// The epoch this process holds, or nil while it does not lead.
    private let held = Mutex<Int64?>(nil)

    /// - Parameter database: a connection of the lease's own (not the store's): renewals must not queue behind
    ///   a long commit.
    public init(database: PostgresDatabase, holder: String, address: String?, ttl: Duration, logger: Logger) {
        self.database = database
        self.holder = holder
        self.address = address
        self.ttl = ttl
        self.logger = logger
    }

    /// The epoch this process leads under, if it leads.
    public var epoch: Int64? { held.withLock { $0 } }

    private var ttlSeconds: Double {
        Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
    }

    /// Takes the lease if nobody holds a live one.
    /// - Returns: the new epoch, or nil when another coordinator's lease is still live.
    public func tryAcquire() async throws -> Int64? {
        let rows = try await bounded { [self] database in
            try await database.query(
                """
                INSERT INTO leader_lease (name, holder, address, epoch, acquired_at, renewed_at, expires_at)
                SELECT ?, ?, ?, 1, now.t, now.t, now.t + ?
                FROM (SELECT extract(epoch FROM clock_timestamp())::double precision AS t) AS now
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, address = excluded.address,
                    epoch = leader_lease.epoch + 1, acquired_at = excluded.acquired_at,
                    renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
                WHERE leader_lease.expires_at < excluded.acquired_at
                RETURNING epoch
                """,
                [.text(Self.name), .text(holder), address.map { .text($0) } ?? .null, .real(ttlSeconds)])
        }
        guard let epoch = rows.first?[0].int.map(Int64.init) else { return nil }
        held.withLock { $0 = epoch }
        logger.notice("took the leader lease", metadata: ["epoch": "\(epoch)", "holder": "\(holder)"])
        return epoch
    }

    /// Extends the lease while the row still names this process and its epoch and has not run out. A lease
    /// that ran out is not extended even when nobody took it yet: a leader paused past its TTL steps down,
    /// whoever wins the race for the row lock when it resumes.
    /// - Returns: false when the lease is lost (this process must stop leading).
    public func renew() async throws -> Bool {
        guard let epoch else { return false }
        let rows = try await bounded { [self] database in
            try await database.query(
                """
                UPDATE leader_lease SET renewed_at = extract(epoch FROM clock_timestamp()),
                    expires_at = extract(epoch FROM clock_timestamp()) + ?
                WHERE name = ? AND holder = ? AND epoch = ? AND expires_at >= extract(epoch FROM clock_timestamp())
                RETURNING epoch
                """, [.real(ttlSeconds), .text(Self.name), .text(holder), .integer(epoch)])
        }
        if rows.isEmpty {
            held.withLock { $0 = nil }
            return false
        }
        return true
    }

    /// Lets the lease go at once (a clean shutdown), so a standby takes over without waiting out the TTL.
    public func release() async {
        guard
            let epoch = held.withLock({ value -> Int64? in
                defer { value = nil }
                return value
            })
        else { return }
        _ = try? await bounded { [self] database in
            try await database.query(
                "UPDATE leader_lease SET expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?",
                [.text(Self.name), .text(holder), .integer(epoch)])
        }
    }

    /// The lease row as it stands (nil before anyone has led).
    public func current() async throws -> Holder? {
        guard
            let row = try await bounded({ database in
                try await database.query(
                    """
                    SELECT holder, address, epoch, extract(epoch FROM clock_timestamp()) - renewed_at,
                        expires_at < extract(epoch FROM clock_timestamp())
                    FROM leader_lease WHERE name = ?
                    """, [.text(Self.name)])
            }).first
        else { return nil }
        return Holder(
            holder: row[0].string ?? "", address: row[1].string, epoch: Int64(row[2].int ?? 0),
            secondsSinceRenewal: row[3].double ?? 0, expired: (row[4].int ?? 1) != 0)
    }

    /// Runs `body` on the lease's connection for at most the TTL. A database that stops answering (frozen, or
    /// gone without closing the socket) would otherwise hold a standby's poll, or a leader's renewal, forever:
    /// at the deadline the connection is dropped, which fails the statement, and the next call reconnects.
    private func bounded<T: Sendable>(_ body: @escaping @Sendable (PostgresDatabase) async throws -> T)
        async throws -> T
    {
        let (database, limit) = (database, ttl)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body(database) }
            group.addTask {
                do { try await Task.sleep(for: limit) } catch { return nil }
                await database.abandonConnection()
                return nil
            }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                if let value = outcome { return value }
                throw PostgresStoreError(.connection, "the database did not answer within the lease TTL (\(limit))")
            }
            throw CancellationError()
        }
    }

    /// The fence: inside the store's write transaction, the row must still carry this process's epoch. The
    /// `FOR SHARE` lock makes a concurrent takeover wait for this commit (or this commit wait for the
    /// takeover, and then fail).
    public func check(_ database: any StoreDatabase) async throws {
        guard let epoch else {
            throw CheckpointStoreError(.fenced, "this coordinator is not the leader; it does not write")
        }
        // From here to COMMIT this transaction holds the lease row: if the process freezes in between, the
        // server ends the session after 5 s idle, so a takeover waits no longer than that. (Only this last step
        // is limited: the body before it may idle longer, hashing a large model between statements.)
        try await database.execute("SET LOCAL idle_in_transaction_session_timeout = 5000")
        let rows = try await database.query(
            "SELECT epoch FROM leader_lease WHERE name = ? FOR SHARE", [.text(Self.name)])
        guard let current = rows.first?[0].int, Int64(current) == epoch else {
            held.withLock { if $0 == epoch { $0 = nil } }
            throw CheckpointStoreError(
                .fenced, "the leader lease moved on from epoch \(epoch): another coordinator leads; nothing written")
        }
    }
}
