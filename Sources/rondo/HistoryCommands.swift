import ArgumentParser
import Coordinator
import Foundation
import ModelManager

struct RoundsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rounds", abstract: "List rounds, or abort the open one.",
        subcommands: [RoundsListCommand.self, RoundsAbortCommand.self], defaultSubcommand: RoundsListCommand.self)
}

struct RoundsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List rounds, newest first.")

    @OptionGroup var store: StoreOptions
    @Option(help: "How many rounds to show.") var limit = 50

    func run() async throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        let rounds = try await store.history().rounds(limit: limit)
        if store.json { return try store.printJSON(["rounds": rounds]) }
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
                round.durationSeconds.map { String(format: "%.2f", $0) } ?? "-",
                [round.reason, round.detail].compactMap { $0 }.joined(separator: ": "),
            ])
        }
        printLine(table.render())
    }
}

struct RoundsAbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort",
        abstract: "Abort the open round: nothing it computed is kept; the next round starts from the current model.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var operatorOptions: OperatorOptions
    @Option(help: "Why, for the audit log.") var reason = "aborted by an operator"

    func run() async throws {
        switch try await OperatorChannel.open(store, operatorOptions) {
        case .coordinator(let api):
            let answer = try await api.post(
                "/v1/rounds/current/abort", ["reason": reason], as: [String: Int].self)
            if store.json { return try store.printJSON(answer) }
            printLine("aborted round \(answer["aborted_round"].map(String.init) ?? "?")")
        case .store(_, let lock):
            withExtendedLifetime(lock) {}
            throw CommandFailure("no coordinator runs on \(store.dataDir); no round is open", code: "not_running")
        }
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
        // Client ids are `c-` and hex; anything else names no client (and must not become a path to another
        // endpoint: `x/../../federation/pause`).
        guard !clientID.isEmpty, clientID.utf8.count <= 64,
            clientID.unicodeScalars.allSatisfy({
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
            })
        else {
            throw CommandFailure("no client \(AdminAPI.printable(clientID))", code: "unknown_client")
        }
        switch try await OperatorChannel.open(store, operatorOptions) {
        case .coordinator(let api):
            _ = try await api.post("/v1/clients/\(clientID)/revoke", ["reason": reason], as: [String: String].self)
        case .store(let database, let lock):
            defer { withExtendedLifetime(lock) {} }
            guard try await database.revokeClient(id: clientID, reason: reason, actor: cliActor) != .unknownClient
            else {
                throw CommandFailure("no client \(clientID)", code: "unknown_client")
            }
        }
        if store.json { return try store.printJSON(["client_id": clientID, "status": "revoked"]) }
        printLine("revoked \(clientID)")
    }
}

struct ClientsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List clients: connected ones first, then by last contact (polls, heartbeats, results).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var operatorOptions: OperatorOptions

    @Option(help: "Clients per page (1 to 10000).") var limit = 100
    @Option(help: "Skip this many clients (the previous page's next offset).") var offset = 0

    func validate() throws {
        guard (1...10_000).contains(limit), offset >= 0 else {
            throw ValidationError("--limit must be between 1 and 10000 and --offset not negative")
        }
    }

    func run() async throws {
        // Liveness lives in the running coordinator; without one, every enrolled client is `silent`.
        let page: ClientPage
        if let api = try await OperatorChannel.running(store, operatorOptions) {
            page = try await api.get("/v1/clients?limit=\(limit)&offset=\(offset)", as: ClientPage.self)
        } else {
            page = ClientPage(try await store.history().clients(), offset: offset, limit: limit)
        }
        let clients = page.clients
        if store.json { return try store.printJSON(page) }
        let now = Date().timeIntervalSince1970
        var table = TextTable(headers: ["CLIENT", "NAME", "PRESENCE", "LAST SEEN", "AGO", "FIRST SEEN", "IDENTITY"])
        for client in clients {
            table.rows.append([
                client.clientID, AdminAPI.printable(client.name), client.presence.rawValue.uppercased(),
                timestamp(client.lastSeen), String(format: "%.0f s", max(0, now - client.lastSeen.secondsSince1970)),
                timestamp(client.firstSeen), client.hasIdentityKey ? "key" : "-",
            ])
        }
        printLine(table.render())
        let shown = clients.isEmpty ? "no clients" : "clients \(offset + 1)–\(offset + clients.count)"
        var footer = "\(shown) of \(page.total) (\(page.connected) connected)"
        if let next = page.nextOffset { footer += "; next page: --offset \(next)" }
        printLine(footer)
    }
}
