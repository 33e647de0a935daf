import CSQLite

/// A failed SQLite call, with SQLite's own message.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String

    public var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite database connection: a thin wrapper that prepares, binds, steps and finalises.
///
/// Not thread-safe by itself: the owner (the store's `StoreSession`) lets one task use it at a time.
final class SQLiteConnection: StoreDatabase, @unchecked Sendable {
    private let handle: OpaquePointer

    var dialect: SQLDialect { .sqlite }

    /// Opens (creating if needed) the database at `path` with WAL, foreign keys and a busy timeout.
    init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws {
        var database: OpaquePointer?
        // NOFOLLOW: a symlink planted in place of the database (or its journal) is refused, not followed.
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW
        let status = sqlite3_open_v2(path, &database, flags, nil)
        guard status == SQLITE_OK, let database else {
            let message = database.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close(database)
            throw SQLiteError(code: status, message: message)
        }
        handle = database
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        // Large pages suit a database that is mostly multi-megabyte blobs: far fewer overflow pages to chain and
        // write. Only takes effect on a new, empty file (before WAL is switched on).
        try execute("PRAGMA page_size = 65536")
        try execute("PRAGMA journal_mode = WAL")
        try execute("PRAGMA synchronous = NORMAL")
        try execute("PRAGMA foreign_keys = ON")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that take no parameters.
    func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &error)
        if status != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw SQLiteError(code: status, message: message)
        }
    }

    /// Runs a statement and returns every row.
    @discardableResult
    func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> [[SQLValue]] {
        let statement = try prepare(sql, parameters)
        defer { sqlite3_finalize(statement) }
        var rows: [[SQLValue]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw lastError(status) }
            rows.append((0..<sqlite3_column_count(statement)).map { column(statement, $0) })
        }
    }

    /// Runs a statement whose first column is a blob and hands each row's blob to `body` in place, without
    /// copying it (the bytes are valid only during the call): how a model is read one chunk at a time.
    func forEachBlob(_ sql: String, _ parameters: [SQLValue], _ body: (UnsafeRawBufferPointer) throws -> Void)
        throws
    {
        let statement = try prepare(sql, parameters)
        defer { sqlite3_finalize(statement) }
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw lastError(status) }
            // Ask for the pointer before the size, as SQLite documents, so no conversion moves the bytes.
            let pointer = sqlite3_column_blob(statement, 0)
            let count = Int(sqlite3_column_bytes(statement, 0))
            try body(UnsafeRawBufferPointer(start: count > 0 ? pointer : nil, count: count > 0 ? count : 0))
        }
    }

    /// A prepared statement with `parameters` bound; the caller finalizes it.
    private func prepare(_ sql: String, _ parameters: [SQLValue]) throws -> OpaquePointer {
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK, let statement else { throw lastError(prepared) }
        for (offset, value) in parameters.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .integer(let number): status = sqlite3_bind_int64(statement, index, number)
            case .real(let number): status = sqlite3_bind_double(statement, index, number)
            case .text(let text):
                status = text.withCString { csqlite_bind_text_copy(statement, index, $0, -1) }
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { raw in
                    csqlite_bind_blob_copy(
                        statement, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(raw.count))
                }
            }
            guard status == SQLITE_OK else {
                sqlite3_finalize(statement)
                throw lastError(status)
            }
        }
        return statement
    }

    private func column(_ statement: OpaquePointer, _ index: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, index)))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard count > 0, let pointer = sqlite3_column_blob(statement, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
        default: return .null
        }
    }

    /// Inserts one chunk, binding the caller's bytes without copying them (they outlive the step).
    func insertChunk(_ table: ChunkTable, version: Int, index: Int, data: UnsafeRawBufferPointer) throws {
        var statement: OpaquePointer?
        let sql = "INSERT INTO \(table.rawValue) (version, idx, data) VALUES (?, ?, ?)"
        let prepared = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK, let statement else { throw lastError(prepared) }
        defer { sqlite3_finalize(statement) }
        sqlite3_bind_int64(statement, 1, Int64(version))
        sqlite3_bind_int64(statement, 2, Int64(index))
        // A nil destructor is SQLITE_STATIC: SQLite reads the caller's bytes in place.
        let bound = sqlite3_bind_blob(
            statement, 3, data.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(data.count), nil)
        guard bound == SQLITE_OK else { throw lastError(bound) }
        let status = sqlite3_step(statement)
        guard status == SQLITE_DONE else { throw lastError(status) }
    }

    /// A write transaction is IMMEDIATE (it takes the write lock at once, so it never fails half-way on a
    /// lock upgrade); a read transaction is DEFERRED (a WAL reader takes no lock and needs no write access).
    func begin(_ kind: StoreTransactionKind) throws {
        try execute(kind == .write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
    }

    func commit() throws {
        try execute("COMMIT")
    }

    func rollback() {
        try? execute("ROLLBACK")
    }

    private func lastError(_ status: Int32) -> SQLiteError {
        SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)))
    }
}
