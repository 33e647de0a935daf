import ModelManager
import PostgresNIO

/// Why the PostgreSQL backend failed, with the server's own message when it sent one.
public struct PostgresStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The `postgres://` URL or a TLS file is unusable.
        public static let configuration = Code("configuration")
        /// No connection could be opened, or it broke.
        public static let connection = Code("connection")
        /// The server refused a statement.
        public static let statement = Code("statement")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The server's SQLSTATE, when it sent one (`40001` serialization failure, `23505` unique violation...).
    public var sqlState: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String { "PostgreSQL \(code): \(message)" }

    /// PSQLError hides its details from `description` (they may hold data); this keeps the server's message and
    /// SQLSTATE, which name a table or constraint at most, and the client-side code otherwise.
    static func wrapping(_ error: any Error, doing what: String) -> PostgresStoreError {
        if let own = error as? PostgresStoreError { return own }
        guard let psql = error as? PSQLError else {
            return PostgresStoreError(.connection, "\(what): \(error)")
        }
        if let message = psql.serverInfo?[.message] {
            return PostgresStoreError(
                .statement, "\(what): \(message)", sqlState: psql.serverInfo?[.sqlState])
        }
        return PostgresStoreError(.connection, "\(what): \(psql.code)")
    }
}

extension PostgresStoreError: DatabaseFailure {}
