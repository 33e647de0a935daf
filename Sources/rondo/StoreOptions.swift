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
    func openStore() throws -> CheckpointStore {
        DataDirectory.restrictNewFiles()  // a WAL or export this command creates stays private too
        let path = resolvedDatabasePath(dataDir)
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError(
                "no Rondo database at \(path) (run `rondo serve` or `rondo demo` with --data-dir \(dataDir) first)")
        }
        return try CheckpointStore(configuration: .init(path: path))
    }

    /// Prints a value as sorted, indented JSON.
    func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        printLine(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

/// Who a CLI action is attributed to in the audit log.
var cliActor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown") }

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
