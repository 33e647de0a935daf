import Foundation

/// Where a PostgreSQL-backed store lives, parsed from a `postgres://` URL.
///
/// `postgres://USER@HOST:PORT/DATABASE?sslmode=MODE&sslrootcert=PATH`, as libpq spells it. The port defaults to
/// 5432, the user to `rondo`, the database to the user's name. `sslmode` is `disable` (the default),
/// `require` (encrypted, server not verified) or `verify-full` (encrypted, the server's certificate checked
/// against `sslrootcert` or the system's roots, and its name against the host).
///
/// The password is deliberately not read from the URL in examples: pass it as a file
/// (`--store-password-file`) or in `RONDO_STORE_PASSWORD`, so it never shows in `ps` or shell history. A
/// password in the URL still works, for tests and local use.
public struct PostgresStoreConfiguration: Sendable, Equatable {
    public enum TLSMode: String, Sendable {
        case disable
        case require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode
    /// PEM file of the certificate authorities that may sign the server's certificate (`verify-full`).
    public var rootCertificatePath: String?
    /// How long opening a connection may take. Default 10 s.
    public var connectTimeoutSeconds: Int = 10

    public init(
        host: String, port: Int = 5432, username: String = "rondo", password: String? = nil,
        database: String? = nil, tlsMode: TLSMode = .disable, rootCertificatePath: String? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database ?? username
        self.tlsMode = tlsMode
        self.rootCertificatePath = rootCertificatePath
    }

    /// Parses a `postgres://` (or `postgresql://`) URL.
    /// - Throws: `PostgresStoreError(.configuration)` naming what is wrong.
    public init(url text: String) throws {
        guard let components = URLComponents(string: text),
            ["postgres", "postgresql"].contains(components.scheme?.lowercased() ?? "")
        else {
            throw PostgresStoreError(.configuration, "not a postgres:// URL")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresStoreError(.configuration, "the postgres:// URL names no host")
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.contains("/") else {
            throw PostgresStoreError(.configuration, "the database name \"\(path)\" contains a slash")
        }
        let username = components.user.flatMap { $0.isEmpty ? nil : $0 } ?? "rondo"
        self.init(
            host: host, port: components.port ?? 5432, username: username, password: components.password,
            database: path.isEmpty ? nil : path)
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: item.value ?? "") else {
                    throw PostgresStoreError(
                        .configuration, "sslmode must be disable, require or verify-full, not \(item.value ?? "")")
                }
                tlsMode = mode
            case "sslrootcert":
                rootCertificatePath = item.value
            case "connect_timeout":
                guard let seconds = item.value.flatMap(Int.init), (1...600).contains(seconds) else {
                    throw PostgresStoreError(.configuration, "connect_timeout must be 1...600 seconds")
                }
                connectTimeoutSeconds = seconds
            default:
                throw PostgresStoreError(.configuration, "unknown postgres:// URL option \(item.name)")
            }
        }
    }

    /// The URL without its password, for logs.
    public var redactedURL: String {
        "postgres://\(username)@\(host):\(port)/\(database)"
            + (tlsMode == .disable ? "" : "?sslmode=\(tlsMode.rawValue)")
    }
}
