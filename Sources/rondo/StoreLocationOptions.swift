import ArgumentParser
import Coordinator
import Foundation
import ModelManager
import PostgresStore

/// Where `serve` keeps its state: the data directory's SQLite file (the default), or a PostgreSQL database that
/// several coordinators share for high availability.
struct StoreLocationOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The store: postgres://USER@HOST:PORT/DATABASE for high availability (env RONDO_STORE). Default: "
                + "SQLite in the data directory."))
    var store: String?
    @Option(help: "File holding the PostgreSQL password (else env RONDO_STORE_PASSWORD). Keep it off the URL.")
    var storePasswordFile: String?
    @Option(help: "Seconds the leader lease lasts without renewal; a standby takes over about this long after.")
    var leaseTTL: Double = 3
    @Option(
        help: ArgumentHelp(
            "The URL clients and standbys name as this coordinator's while it leads (default: its own listener)."))
    var advertiseURL: String?

    /// The PostgreSQL configuration, or nil for SQLite.
    func postgres() throws -> PostgresStoreConfiguration? {
        if store?.isEmpty == true { throw ValidationError("--store takes a postgres:// URL, not an empty string") }
        guard let url = store ?? ProcessInfo.processInfo.environment["RONDO_STORE"], !url.isEmpty else { return nil }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw ValidationError("--store takes a postgres:// URL (SQLite needs no --store: it is the default)")
        }
        let configuration = try postgresConfiguration(url, passwordFile: storePasswordFile, flag: "--store")
        guard leaseTTL.isFinite, leaseTTL >= 1, leaseTTL <= 600 else {
            throw ValidationError("--lease-ttl must be between 1 and 600 seconds")
        }
        return configuration
    }

    var leaseDuration: Duration { .milliseconds(Int64(leaseTTL * 1000)) }
}

/// The configuration of a `postgres://` URL given to `flag`, with the password from `passwordFile` (checked
/// like every secret file), else `RONDO_STORE_PASSWORD`, else the URL's own.
func postgresConfiguration(_ url: String, passwordFile: String?, flag: String) throws -> PostgresStoreConfiguration {
    var configuration: PostgresStoreConfiguration
    do {
        configuration = try PostgresStoreConfiguration(url: url)
    } catch {
        throw ValidationError("\(flag): \(error)")
    }
    if let passwordFile {
        configuration.password = try SecretFile.readConfigured(passwordFile)
    } else if let password = ProcessInfo.processInfo.environment["RONDO_STORE_PASSWORD"] {
        configuration.password = password
    }
    return configuration
}
