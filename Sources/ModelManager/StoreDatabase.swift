/// The SQL dialect a `StoreDatabase` speaks: the store keeps one set of statements and picks the schema and the
/// few dialect-specific statements (integrity checks, locks) by it.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// The two chunked-blob tables.
public enum ChunkTable: String, Sendable {
    case checkpointChunks = "checkpoint_chunks"
    case serverStateChunks = "server_state_chunks"
}

/// What a transaction may do.
public enum StoreTransactionKind: Sendable {
    /// Reads and writes; writers are serialized, and a write fence (if any) is checked before the commit.
    case write
    /// Reads of one consistent snapshot.
    case read
}

/// One connection to the database a `CheckpointStore` keeps its state in: the seam between the store's
/// semantics (written once, in SQL both engines accept) and an engine (SQLite embedded, PostgreSQL for high
/// availability).
///
/// Statements use `?` placeholders; a driver rewrites them if its engine numbers them. A driver is used by one
/// task at a time: `CheckpointStore` serializes every call through its session, so a driver needs no locking
/// of its own. Transactions are explicit (`begin`, `commit`, `rollback`): between `begin` and the end, every
/// call belongs to that transaction.
public protocol StoreDatabase: AnyObject, Sendable {
    /// Which SQL the store must speak to this database.
    var dialect: SQLDialect { get }

    /// Runs statements that take no parameters (schema changes); several may be separated by `;`.
    func execute(_ sql: String) async throws

    /// Runs one statement and returns every row.
    @discardableResult
    func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [[SQLValue]]

    /// Runs a statement whose first column is a blob (or text) and hands each row's bytes to `body` in turn,
    /// one row in memory at a time; the bytes are valid only during the call.
    func forEachBlob(_ sql: String, _ parameters: [SQLValue], _ body: (UnsafeRawBufferPointer) throws -> Void)
        async throws

    /// Inserts chunk `index` of `version` into `table`. `data` is valid only during the call.
    func insertChunk(_ table: ChunkTable, version: Int, index: Int, data: UnsafeRawBufferPointer) async throws

    /// Opens a transaction.
    func begin(_ kind: StoreTransactionKind) async throws
    /// Commits the open transaction.
    func commit() async throws
    /// Rolls back the open transaction; a failure here leaves nothing to do (the engine discards the
    /// transaction when the connection ends).
    func rollback() async
}

/// A check run inside every write transaction just before it commits; throwing rolls the transaction back.
///
/// High availability uses it for fencing: a coordinator that has lost its leader lease must never commit, so
/// the fence re-reads the lease's epoch in the same transaction as the write.
public protocol StoreWriteFence: Sendable {
    func check(_ database: any StoreDatabase) async throws
}

/// An error of the database engine itself (a closed connection, a full disk, a read-only file), as opposed to
/// a refusal by the store's rules: the coordinator answers it 503 `store_failing`, without the engine's
/// message, and retries.
public protocol DatabaseFailure: Error {}

extension SQLiteError: DatabaseFailure {}
