import ArgumentParser
import Coordinator
import FederationCore
import Foundation
import ModelManager

/// `rondo status`: the running coordinator's state and effective configuration, from its admin API.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Phase, round, versions, quorum, paused/draining, last commit and configuration of the running coordinator."
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var operatorOptions: OperatorOptions

    func run() async throws {
        guard let api = try await OperatorChannel.running(store, operatorOptions) else {
            let history = try await store.history()
            let last = try await history.rounds(limit: 1).first
            throw CommandFailure(
                "no coordinator runs on \(store.dataDir)"
                    + (last.map { "; the last round, \($0.round), ended \($0.status.rawValue)" } ?? "")
                    + ((try? await history.refs()[CheckpointRef.current.rawValue]).map { "; current is v\($0)" } ?? ""),
                code: "not_running")
        }
        let view = try await api.get("/v1/status", as: StatusView.self)
        if store.json { return try store.printJSON(view) }
        let status = view.status
        let state =
            status.draining ? "DRAINING" : status.paused ? "PAUSED (no new round starts)" : status.phase.rawValue
        var lines: [(String, String)] = [
            ("state", state),
            ("round", "\(status.round)" + (status.maxRounds.map { " of \($0)" } ?? "")),
            ("current", view.currentVersion.map { "v\($0)" } ?? "-"),
            ("best", view.bestVersion.map { "v\($0)" } ?? "-"),
            (
                "last round",
                view.lastRound.map { "\($0) \(view.lastRoundOutcome?.rawValue ?? "")" } ?? "none finished yet"
            ),
            (
                "last commit",
                view.lastCommitAgeSeconds.map { "\(duration($0)) ago (\(timestamp(view.lastCommitAt)))" } ?? "never"
            ),
            (
                "clients",
                "\(status.clientsConnected) connected of \(status.clientsRegistered) registered; a round needs "
                    + "\(status.clientsRequired) connected and \(status.quorum) results"
                    + (status.clientsConnected < status.clientsRequired ? "  (QUORUM AT RISK)" : "")
            ),
            (
                "rounds (this process)",
                "\(status.committedRounds) committed, \(status.failedRounds) not committed (failed, rejected or aborted)"
            ),
        ]
        if let privacy = view.privacy {
            let epsilon = privacy.epsilon.map { String(format: "%.4g", $0) } ?? "unbounded"
            let budget = privacy.epsilonBudget.map { String(format: " of a budget of %.4g", $0) } ?? ""
            lines.append(
                (
                    "privacy",
                    "epsilon \(epsilon)\(budget) at delta \(privacy.delta) over \(privacy.rounds) rounds; noise multiplier "
                        + "\(privacy.noiseMultiplier), \(privacy.clipping.rawValue) clip norm \(privacy.clipNorm)"
                        + (privacy.budgetReached ? "  (BUDGET REACHED: no round starts)" : "")
                ))
        }
        lines.append(("", ""))
        if case .object(let members) = try JSONParser.parse(JSONStyle.encoder().encode(view.configuration)) {
            for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                lines.append(("config " + key, Self.text(value)))
            }
        }
        let width = (lines.map(\.0.count).max() ?? 0) + 2
        printLine(lines.map { $0.0.isEmpty ? "" : $0.0.padded(width) + $0.1 }.joined(separator: "\n"))
    }

    /// A configuration value as one line: `-` for null, `key=value …` for objects.
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .null: "-"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : "\(number)"
        case .string(let text): text
        case .array(let items): items.map(text).joined(separator: ", ")
        case .object(let members):
            members.isEmpty
                ? "{}" : members.sorted { $0.key < $1.key }.map { "\($0.key)=\(text($0.value))" }.joined(separator: " ")
        }
    }

    func duration(_ seconds: Double) -> String {
        seconds < 120
            ? String(format: "%.0f s", seconds)
            : seconds < 7200
                ? String(format: "%.0f min", seconds / 60) : String(format: "%.1f h", seconds / 3600)
    }
}

/// `rondo events`: the audit log, newest first.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "The audit log (rollbacks, tags, pauses, aborts, revocations, …), newest first.")
    @OptionGroup var store: StoreOptions
    @Option(help: "Only events of this kind (\(EventKind.allCases.map(\.rawValue).joined(separator: ", "))).")
    var kind: String?
    @Option(help: "How many events to show.") var limit = 50

    func run() async throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        var eventKind: EventKind?
        if let kind {
            guard let known = EventKind(rawValue: kind) else {
                throw ValidationError(
                    "--kind must be one of \(EventKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            eventKind = known
        }
        // The audit log is in the store, whoever runs: the same answer as `GET /v1/events`.
        let events = try await store.history().events(limit: limit, kind: eventKind)
        if store.json { return try store.printJSON(["events": events]) }
        var table = TextTable(headers: ["ID", "AT", "KIND", "ACTOR", "ROUND", "VERSION", "DETAIL"])
        for event in events {
            table.rows.append([
                String(event.id), timestamp(event.at), event.kind.rawValue, event.actor,
                event.round.map(String.init) ?? "-", event.version.map { "v\($0)" } ?? "-",
                event.detail.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
            ])
        }
        printLine(table.render())
    }
}

/// `rondo pause`: no new round starts; the open one finishes.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Start no new round (the open one finishes); audited.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var operatorOptions: OperatorOptions

    func run() async throws {
        try await FederationCommand.set(paused: true, store, operatorOptions)
    }
}

/// `rondo resume`: rounds start again.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Start rounds again; audited.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var operatorOptions: OperatorOptions

    func run() async throws {
        try await FederationCommand.set(paused: false, store, operatorOptions)
    }
}
