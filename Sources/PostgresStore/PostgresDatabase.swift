import Foundation
import Logging
import ModelManager
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// A `StoreDatabase` on one PostgreSQL connection (postgres-nio), for a store that several coordinators share.
///
/// The store's statements are written with `?` placeholders; this driver numbers them (`$1`, `$2`...) and binds
/// `SQLValue`s as `BIGINT`, `DOUBLE PRECISION`, `TEXT` and `BYTEA`. Results come back in binary and map the
/// other way. A connection that broke is opened again on the next call outside a transaction; inside one, the
/// call fails and the store rolls the transaction back (the server already has).
public final class PostgresDatabase: StoreDatabase {
    public var dialect: SQLDialect { .postgres }

    private struct State {
        var connection: PostgresConnection?
        /// The connection being opened, which every caller that finds none awaits (so one is opened, not one
        /// per caller).
        var opening: Task<PostgresConnection, any Error>?
        var inTransaction = false
        var connections = 0
    }

    private let configuration: PostgresStoreConfiguration
    private let logger: Logger
    private let state = Mutex(State())

    /// Opens the first connection (so a wrong URL or password fails here, at start-up).
    public init(configuration: PostgresStoreConfiguration, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        _ = try await connection()
    }

    deinit {
        // postgres-nio requires every connection closed before it is released: the closing task holds it until
        // then.
        if let connection = state.withLock({ $0.connection }) {
            Task.detached { try? await connection.close() }
        }
    }

    /// Drops the connection, failing every statement still waiting on it (a server that stopped answering
    /// would otherwise keep them waiting forever); the next call opens a new one.
    public func abandonConnection() async {
        let connection = state.withLock { state in
            defer { state.connection = nil }
            return state.connection
        }
        try? await connection?.close()
    }

    /// Closes the connection.
    public func close() async {
        let connection = state.withLock { state in
            defer { state.connection = nil }
            return state.connection
        }
        try? await connection?.close()
    }

    // MARK: StoreDatabase

    /// Runs each `;`-separated statement in turn (postgres-nio sends every statement as a prepared one, which
    /// holds a single command).
    public func execute(_ sql: String) async throws {
        for statement in Self.statements(sql) {
            try await query(statement, [])
        }
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue]) async throws -> [[SQLValue]] {
        let connection = try await connection()
        do {
            var result: [[SQLValue]] = []
            for try await row in try await connection.query(Self.query(sql, parameters), logger: logger) {
                result.append(try row.map(Self.value))
            }
            return result
        } catch {
            throw PostgresStoreError.wrapping(error, doing: Self.summary(sql))
        }
    }

    public func forEachBlob(
        _ sql: String, _ parameters: [SQLValue], _ body: (UnsafeRawBufferPointer) throws -> Void
    ) async throws {
        let connection = try await connection()
        let rows: PostgresRowSequence
        do {
            rows = try await connection.query(Self.query(sql, parameters), logger: logger)
        } catch {
            throw PostgresStoreError.wrapping(error, doing: Self.summary(sql))
        }
        var iterator = rows.makeAsyncIterator()
        while true {
            let row: PostgresRow?
            do {
                row = try await iterator.next()
            } catch {
                throw PostgresStoreError.wrapping(error, doing: Self.summary(sql))
            }
            guard let row else { return }
            guard let cell = row.first, let bytes = cell.bytes else { continue }
            try bytes.withUnsafeReadableBytes { try body($0) }
        }
    }

    public func insertChunk(_ table: ChunkTable, version: Int, index: Int, data: UnsafeRawBufferPointer) async throws {
        let connection = try await connection()
        var binds = PostgresBindings(capacity: 3)
        binds.append(Int64(version))
        binds.append(Int64(index))
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        binds.append(buffer)
        let sql = "INSERT INTO \(table.rawValue) (version, idx, data) VALUES ($1, $2, $3)"
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        } catch {
            throw PostgresStoreError.wrapping(error, doing: Self.summary(sql))
        }
    }

    /// Writes run at READ COMMITTED (PostgreSQL's default): the store takes the row locks it relies on
    /// (the fence's `FOR SHARE` on the lease); reads see one REPEATABLE READ snapshot.
    public func begin(_ kind: StoreTransactionKind) async throws {
        try await execute(kind == .write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        state.withLock { $0.inTransaction = true }
    }

    public func commit() async throws {
        defer { state.withLock { $0.inTransaction = false } }
        try await execute("COMMIT")
    }

    public func rollback() async {
        defer { state.withLock { $0.inTransaction = false } }
        try? await execute("ROLLBACK")
    }

    // MARK: Connection

    /// The open connection, or a new one when it broke outside a transaction.
    private func connection() async throws -> PostgresConnection {
        let (current, inTransaction) = state.withLock { ($0.connection, $0.inTransaction) }
        if let current, !current.isClosed { return current }
        if inTransaction {
            throw PostgresStoreError(.connection, "the connection to \(configuration.host) broke during a transaction")
        }
        let (configuration, logger) = (configuration, logger)
        let (opening, number) = state.withLock { state -> (Task<PostgresConnection, any Error>, Int) in
            if let opening = state.opening { return (opening, state.connections) }
            state.connections += 1
            let number = state.connections
            let opening = Task { try await Self.connect(configuration, id: number, logger: logger) }
            state.opening = opening
            return (opening, number)
        }
        do {
            let opened = try await opening.value
            state.withLock { state in
                state.connection = opened
                if state.opening == opening { state.opening = nil }
            }
            if number > 1 {
                logger.warning("reconnected to PostgreSQL", metadata: ["store": "\(configuration.redactedURL)"])
            }
            return opened
        } catch {
            state.withLock { state in if state.opening == opening { state.opening = nil } }
            throw error
        }
    }

    /// Opens one connection with `configuration`.
    public static func connect(_ configuration: PostgresStoreConfiguration, id: Int, logger: Logger) async throws
        -> PostgresConnection
    {
        var options = PostgresConnection.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: try tls(configuration))
        options.options.connectTimeout = .seconds(Int64(configuration.connectTimeoutSeconds))
        // (The lease's fence limits how long a session may idle holding the lease row: `LeaderLease.check`.)
        options.options.additionalStartupParameters = [("application_name", "rondo")]
        do {
            return try await PostgresConnection.connect(configuration: options, id: id, logger: logger)
        } catch {
            throw PostgresStoreError.wrapping(error, doing: "connecting to \(configuration.redactedURL)")
        }
    }

    private static func tls(_ configuration: PostgresStoreConfiguration) throws -> PostgresConnection.Configuration.TLS
    {
        switch configuration.tlsMode {
        case .disable:
            return .disable
        case .require, .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            if configuration.tlsMode == .require {
                tls.certificateVerification = .none
            } else if let path = configuration.rootCertificatePath {
                tls.trustRoots = .file(path)
            }
            do {
                return .require(try NIOSSLContext(configuration: tls))
            } catch {
                throw PostgresStoreError(.configuration, "TLS: \(error)")
            }
        }
    }

    // MARK: Values

    /// `sql` with each `?` outside a quoted string numbered for PostgreSQL, and `parameters` bound.
    static func query(_ sql: String, _ parameters: [SQLValue]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: parameters.count)
        for parameter in parameters {
            switch parameter {
            case .null: binds.appendNull()
            case .integer(let value): binds.append(value)
            case .real(let value): binds.append(value)
            case .text(let value): binds.append(value)
            case .blob(let value): binds.append(ByteBuffer(bytes: value))
            }
        }
        return PostgresQuery(unsafeSQL: numberPlaceholders(sql), binds: binds)
    }

    /// Rewrites `?` placeholders as `$1`, `$2`... leaving quoted strings and identifiers alone.
    static func numberPlaceholders(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 8)
        var number = 0
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
            } else if character == "?" {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// `sql` split at each `;` outside quotes, without empty statements.
    static func statements(_ sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == ";" {
                statements.append(current)
                current = ""
                continue
            }
            current.append(character)
        }
        statements.append(current)
        return statements.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard let bytes = cell.bytes else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea: return .blob(Array(buffer: bytes))
        case .void: return .null
        default: return .text(try cell.decode(String.self))
        }
    }

    /// The statement's first words, to say which one failed without logging any value.
    private static func summary(_ sql: String) -> String {
        let words = sql.split(whereSeparator: \.isWhitespace).prefix(6).joined(separator: " ")
        return words.count > 60 ? String(words.prefix(60)) + "…" : words
    }
}

extension CheckpointStore {
    /// Opens a store on PostgreSQL: connects, applies pending migrations, and closes the connection again if
    /// anything fails (postgres-nio requires every connection closed before it is released).
    public static func open(
        postgres: PostgresStoreConfiguration, configuration: Configuration, fence: (any StoreWriteFence)? = nil,
        logger: Logger
    ) async throws -> CheckpointStore {
        let database = try await PostgresDatabase(configuration: postgres, logger: logger)
        do {
            return try await CheckpointStore(database: database, configuration: configuration, fence: fence)
        } catch {
            await database.close()
            throw error
        }
    }
}
