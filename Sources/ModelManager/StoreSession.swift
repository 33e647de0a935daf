/// The store's one way into its database: every statement and transaction goes through here, one at a time.
///
/// `CheckpointStore` is an actor, but an actor lets another call in whenever the current one suspends, and a
/// PostgreSQL statement suspends. So the session holds a lock for a whole transaction (or a single statement
/// outside one). The task inside a transaction is marked with a task-local, so the store's helpers can query
/// from inside a transaction without taking the lock again, and a transaction opened inside another simply
/// joins it.
final class StoreSession: Sendable {
    let database: any StoreDatabase
    let fence: (any StoreWriteFence)?
    private let lock = AsyncLock()

    /// The session whose lock the current task holds, if any.
    @TaskLocal private static var holder: ObjectIdentifier?

    init(database: any StoreDatabase, fence: (any StoreWriteFence)?) {
        self.database = database
        self.fence = fence
    }

    var dialect: SQLDialect { database.dialect }

    private var isHeldByCurrentTask: Bool { Self.holder == ObjectIdentifier(self) }

    /// Runs `body` with the lock held (or directly, when this task already holds it).
    func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        if isHeldByCurrentTask { return try await body() }
        await lock.lock()
        defer { lock.unlock() }
        return try await Self.$holder.withValue(ObjectIdentifier(self)) { try await body() }
    }

    /// Runs `body` in one transaction: all of it commits, or none of it does. A write transaction checks the
    /// fence last, in the same transaction, so a fenced-off writer's changes never commit.
    @discardableResult
    /// - Parameter fenced: false only for schema migrations, which every coordinator (standbys too) applies
    ///   before it competes for the lease.
    func transaction<T>(
        _ kind: StoreTransactionKind = .write, fenced: Bool = true, _ body: () async throws -> T
    ) async throws -> T {
        if isHeldByCurrentTask { return try await body() }
        return try await exclusively {
            try await database.begin(kind)
            do {
                let result = try await body()
                if kind == .write, fenced, let fence { try await fence.check(database) }
                try await database.commit()
                return result
            } catch {
                await database.rollback()
                throw error
            }
        }
    }

    /// Runs reads in one snapshot.
    @discardableResult
    func readTransaction<T>(_ body: () async throws -> T) async throws -> T {
        try await transaction(.read, body)
    }

    func execute(_ sql: String) async throws {
        try await exclusively { try await database.execute(sql) }
    }

    @discardableResult
    func query(_ sql: String, _ parameters: [SQLValue] = []) async throws -> [[SQLValue]] {
        try await exclusively { try await database.query(sql, parameters) }
    }

    func forEachBlob(_ sql: String, _ parameters: [SQLValue], _ body: (UnsafeRawBufferPointer) throws -> Void)
        async throws
    {
        try await exclusively { try await database.forEachBlob(sql, parameters, body) }
    }

    func insertChunk(_ table: ChunkTable, version: Int, index: Int, data: UnsafeRawBufferPointer) async throws {
        try await exclusively { try await database.insertChunk(table, version: version, index: index, data: data) }
    }
}
