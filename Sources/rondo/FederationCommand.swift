import ArgumentParser
import Foundation

/// `rondo federation pause|resume`: operator controls of a running coordinator, through its admin API.
struct FederationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "federation", abstract: "Pause or resume the federation a coordinator runs on the data directory.",
        subcommands: [Pause.self, Resume.self])

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start no new round (the open one finishes); audited as the admin token's action.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var operatorOptions: OperatorOptions

        func run() async throws {
            try await FederationCommand.set(paused: true, store, operatorOptions)
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start rounds again.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var operatorOptions: OperatorOptions

        func run() async throws {
            try await FederationCommand.set(paused: false, store, operatorOptions)
        }
    }

    /// Pausing is the running coordinator's state (a stopped one has nothing to pause), so this needs one.
    static func set(paused: Bool, _ store: StoreOptions, _ operatorOptions: OperatorOptions) async throws {
        switch try await OperatorChannel.open(store, operatorOptions) {
        case .coordinator(let api):
            let path = paused ? "/v1/federation/pause" : "/v1/federation/resume"
            _ = try await api.post(path, nil as [String: String]?, as: [String: Bool].self)
            if store.json { return try store.printJSON(["paused": paused]) }
            printLine(paused ? "paused: no new round starts" : "resumed")
        case .store(_, let lock):
            withExtendedLifetime(lock) {}
            throw CommandFailure(
                "no coordinator runs on \(store.dataDir); there is no federation to \(paused ? "pause" : "resume")",
                code: "not_running")
        }
    }
}
