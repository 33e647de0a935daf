import ArgumentParser
import Foundation
import ModelManager

struct RoundsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rounds", abstract: "List rounds, newest first.")

    @OptionGroup var store: StoreOptions
    @Option(help: "How many rounds to show.") var limit = 50

    func run() async throws {
        let rounds = try await store.openStore().rounds(limit: limit)
        if store.json { return try store.printJSON(rounds) }
        var table = TextTable(headers: [
            "ROUND", "STATUS", "BASE", "RESULT", "SELECTED", "ANSWERED", "DROPPED", "REJECTED", "EVAL_ACC", "EVAL_LOSS",
            "SECONDS", "REASON",
        ])
        for round in rounds {
            table.rows.append([
                String(round.round), round.status.rawValue, "v\(round.baseVersion)",
                round.resultVersion.map { "v\($0)" } ?? "-",
                String(round.selected), String(round.answered), String(round.dropped), String(round.rejected),
                decimal(round.evalMetrics["accuracy"]), decimal(round.evalLoss),
                round.finishedAt.map { String(format: "%.2f", $0 - round.startedAt) } ?? "-",
                [round.reason, round.detail].compactMap { $0 }.joined(separator: ": "),
            ])
        }
        printLine(table.render())
    }
}

struct ClientsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clients", abstract: "List or revoke clients.",
        subcommands: [ClientsListCommand.self, ClientsRevokeCommand.self], defaultSubcommand: ClientsListCommand.self)
}

struct ClientsRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a client's token for good (a running coordinator refuses it at once).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var operatorOptions: OperatorOptions
    @Argument(help: "The client id (see `rondo clients`).") var clientID: String
    @Option(help: "Why, for the audit log.") var reason = "revoked by an operator"

    func run() async throws {
        switch try await OperatorChannel.open(store, operatorOptions) {
        case .coordinator(let api):
            _ = try await api.post("/v1/clients/\(clientID)/revoke", ["reason": reason], as: [String: String].self)
        case .store(let database, let lock):
            defer { withExtendedLifetime(lock) {} }
            guard try await database.revokeClient(id: clientID, reason: reason, actor: cliActor) else {
                throw ValidationError("no client \(clientID)")
            }
        }
        if store.json { return try store.printJSON(["client_id": clientID, "status": "revoked"]) }
        printLine("revoked \(clientID)")
    }
}

struct ClientsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List registered clients, most recently seen first.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let clients = try await store.openStore().clients()
        if store.json {
            // Token hashes stay in the database.
            return try store.printJSON(
                clients.map {
                    [
                        "client_id": $0.clientID, "name": $0.name, "first_seen": timestamp($0.firstSeen),
                        "last_seen": timestamp($0.lastSeen), "left_at": timestamp($0.leftAt),
                        "revoked_at": timestamp($0.revokedAt),
                    ]
                })
        }
        var table = TextTable(headers: ["CLIENT", "NAME", "FIRST SEEN", "LAST SEEN", "LEFT", "REVOKED"])
        for client in clients {
            table.rows.append([
                client.clientID, client.name, timestamp(client.firstSeen), timestamp(client.lastSeen),
                timestamp(client.leftAt), timestamp(client.revokedAt),
            ])
        }
        printLine(table.render())
    }
}
