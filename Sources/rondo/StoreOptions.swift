import ArgumentParser
import Coordinator
import Foundation
import ModelManager

/// Options of the commands that read or change the checkpoint database directly.
struct StoreOptions: ParsableArguments {
    @Option(help: "The coordinator's data directory (holds rondo.db).")
    var dataDir: String = "./rondo-data"

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    /// Opens the existing database; a missing one is an error, not a new empty store.
    func openStore() async throws -> CheckpointStore {
        DataDirectory.restrictNewFiles()  // a WAL or export this command creates stays private too
        let path = resolvedDatabasePath(dataDir)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure(
                "no Rondo database at \(path) (run `rondo serve` or `rondo demo` with --data-dir \(dataDir) first)",
                code: "no_database")
        }
        return try await CheckpointStore(configuration: .init(path: path))
    }

    /// Prints a value in the admin API's JSON style (`JSONStyle`), indented.
    func printJSON(_ value: some Encodable) throws {
        printLine(String(decoding: try JSONStyle.encoder(pretty: true).encode(value), as: UTF8.self))
    }

    /// The store's history, read as the admin API shows it.
    func history() async throws -> FederationHistory {
        FederationHistory(store: try await openStore())
    }
}

/// Who a CLI action is attributed to in the audit log: `cli:alice@host`, the OS user of the process (from its
/// uid, not `$USER`, which may be unset or wrong under sudo) and the host.
var cliActor: String { "cli:" + operatorName }

/// `alice@host`, sent to a running coordinator as `Rondo-Operator` so its audit log names the person too.
var operatorName: String {
    var user = "uid\(geteuid())"
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { user = String(cString: name) }
    var buffer = [CChar](repeating: 0, count: 256)
    let host = gethostname(&buffer, buffer.count) == 0 ? String(cString: buffer) : "unknown-host"
    let name = "\(user)@\(host)"
    return name.utf8.count <= 128 && name.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) ? name : "uid\(geteuid())"
}

/// A time as `2026-11-23 21:40:05Z`.
func timestamp(_ time: Timestamp?) -> String {
    timestamp(time?.secondsSince1970)
}

/// A Unix time as `2026-11-23 21:40:05Z`.
func timestamp(_ seconds: Double?) -> String {
    guard let seconds else { return "-" }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
    return formatter.string(from: Date(timeIntervalSince1970: seconds)) + "Z"
}

/// A metric value with four decimals, or `-`.
func decimal(_ value: Double?) -> String {
    value.map { String(format: "%.4f", $0) } ?? "-"
}

/// A byte count in B, KB, MB or GB.
func byteSize(_ bytes: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
