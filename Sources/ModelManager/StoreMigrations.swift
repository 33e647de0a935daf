/// The store's schema, as append-only lists (one per dialect, numbered alike, so version N means the same
/// tables on both; PostgreSQL's list goes on with what only a shared database needs): a released migration is never edited, only followed by new ones. `schema_migrations`
/// records which have run, so opening an older database upgrades it in place.
enum StoreMigrations {
    typealias Migration = (version: Int, sql: String)

    static func all(_ dialect: SQLDialect) -> [Migration] {
        switch dialect {
        case .sqlite: sqlite
        case .postgres: postgres
        }
    }

    static let sqlite: [Migration] = [
        (
            1,
            """
            CREATE TABLE checkpoints (
                version INTEGER PRIMARY KEY,
                round INTEGER NOT NULL,
                parent_version INTEGER,
                created_at REAL NOT NULL,
                sha256 TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                tensor_count INTEGER NOT NULL,
                format TEXT NOT NULL DEFAULT 'safetensors',
                status TEXT NOT NULL CHECK (status IN ('candidate', 'committed', 'rejected', 'aborted', 'imported')),
                status_reason TEXT,
                integrity_error TEXT,
                metrics_json TEXT NOT NULL DEFAULT '{}'
            );
            CREATE TABLE checkpoint_chunks (
                version INTEGER NOT NULL REFERENCES checkpoints(version) ON DELETE CASCADE,
                idx INTEGER NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (version, idx)
            ) WITHOUT ROWID;
            CREATE TABLE refs (
                name TEXT PRIMARY KEY,
                version INTEGER NOT NULL REFERENCES checkpoints(version),
                updated_at REAL NOT NULL
            );
            CREATE TABLE rounds (
                round INTEGER PRIMARY KEY,
                status TEXT NOT NULL CHECK (status IN ('running', 'committed', 'failed', 'rejected', 'aborted')),
                started_at REAL NOT NULL,
                finished_at REAL,
                base_version INTEGER NOT NULL,
                result_version INTEGER,
                selected INTEGER NOT NULL,
                answered INTEGER NOT NULL DEFAULT 0,
                dropped INTEGER NOT NULL DEFAULT 0,
                rejected INTEGER NOT NULL DEFAULT 0,
                reason TEXT,
                detail TEXT,
                eval_loss REAL,
                eval_metrics_json TEXT NOT NULL DEFAULT '{}'
            );
            CREATE TABLE clients (
                client_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                token_sha256 TEXT NOT NULL UNIQUE,
                first_seen REAL NOT NULL,
                last_seen REAL NOT NULL,
                left_at REAL
            );
            CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at REAL NOT NULL,
                kind TEXT NOT NULL,
                actor TEXT NOT NULL,
                round INTEGER,
                version INTEGER,
                trace_id TEXT,
                detail_json TEXT NOT NULL DEFAULT '{}'
            );
            CREATE INDEX events_by_kind ON events(kind, id);
            """
        ),
        (
            2,
            """
            ALTER TABLE clients ADD COLUMN revoked_at REAL;
            """
        ),
        (
            3,
            """
            ALTER TABLE clients ADD COLUMN identity_sha256 TEXT;
            CREATE UNIQUE INDEX clients_by_identity ON clients(identity_sha256) WHERE identity_sha256 IS NOT NULL;
            """
        ),
        (
            4,
            """
            ALTER TABLE checkpoints ADD COLUMN strategy_json TEXT;
            CREATE TABLE server_states (
                version INTEGER PRIMARY KEY REFERENCES checkpoints(version) ON DELETE CASCADE,
                sha256 TEXT NOT NULL,
                size_bytes INTEGER NOT NULL
            );
            CREATE TABLE server_state_chunks (
                version INTEGER NOT NULL REFERENCES server_states(version) ON DELETE CASCADE,
                idx INTEGER NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (version, idx)
            ) WITHOUT ROWID;
            """
        ),
        (
            5,
            // The privacy ledger has no foreign key: pruning or rolling back a version keeps what its round spent.
            """
            CREATE TABLE privacy_ledger (
                round INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                sampling_rate REAL NOT NULL,
                noise_multiplier REAL NOT NULL,
                clip_norm REAL NOT NULL,
                next_clip_norm REAL NOT NULL,
                results INTEGER NOT NULL,
                unclipped INTEGER NOT NULL,
                recorded_at REAL NOT NULL
            );
            """
        ),
    ]

    /// Applies every migration not yet recorded, all in one transaction. On PostgreSQL the transaction first
    /// takes an advisory lock, so coordinators starting together on one database migrate it once.
    static func apply(to session: StoreSession, now: Double) async throws {
        try await session.transaction(fenced: false) {
            if session.dialect == .postgres {
                try await session.query("SELECT pg_advisory_xact_lock(?)", [.integer(migrationLockKey)])
            }
            try await session.execute(
                session.dialect == .postgres
                    ? "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
                    : "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            let applied = Set(
                try await session.query("SELECT version FROM schema_migrations").compactMap { $0[0].int })
            for migration in all(session.dialect) where !applied.contains(migration.version) {
                try await session.execute(migration.sql)
                try await session.query(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    [.integer(Int64(migration.version)), .real(now)])
            }
        }
    }

    /// The advisory lock key migrations take on PostgreSQL ("rondo" in ASCII).
    static let migrationLockKey: Int64 = 0x726f_6e64_6f
}
