/// Why a checkpoint-store operation was refused.
public struct CheckpointStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No checkpoint with that version (or no round with that number).
        public static let notFound = Code("not_found")
        /// The stored bytes do not match their SHA-256, or `verify` found the version corrupt.
        public static let integrity = Code("integrity")
        /// The operation does not apply to the checkpoint's status (e.g. rolling back to a candidate).
        public static let invalidState = Code("invalid_state")
        /// The operation needs the operator's explicit `force` (rolling back to a rejected or aborted version).
        public static let forceRequired = Code("force_required")
        /// A tag name that is reserved or malformed.
        public static let invalidTag = Code("invalid_tag")
        /// This coordinator no longer holds the leader lease (another one leads): the write was not committed.
        public static let fenced = Code("fenced")
        /// The database itself failed.
        public static let database = Code("database")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
