import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import ModelManager

/// The operator CLI as an on-call engineer uses it: versions named any way outputs print them, rollbacks to
/// versions nobody vouched for need `--force`, one JSON style, and errors that are one line (or JSON) with
/// exit status 1.
@Suite(.serialized) struct OperatorCLITests {
    static func json(_ output: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any] ?? [:]
    }

    /// Every string value anywhere in a JSON value.
    static func strings(in value: Any) -> [String] {
        switch value {
        case let text as String: [text]
        case let array as [Any]: array.flatMap(strings(in:))
        case let object as [String: Any]: object.values.flatMap(strings(in:))
        default: []
        }
    }

    /// True for an RFC 3339 UTC timestamp such as `2026-12-03T21:40:05.123Z`.
    static func isRFC3339(_ value: Any?) -> Bool {
        guard let text = value as? String else { return false }
        return text.wholeMatch(of: #/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/#) != nil
    }

    @Test func everyVersionTakingCommandAcceptsRefsAndTagsAndRejectedTargetsNeedForce() async throws {
        let directory = try await CheckpointCLITests.demoDirectory()  // v1–v4, all committed
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        let rejected = try await store.storeCandidate(
            round: 4, parentVersion: 4, bytes: try await store.bytes(version: 2), tensorCount: 2
        ).version
        try await store.reject(version: rejected, metrics: CheckpointMetrics(), reason: "accuracy fell by 0.2")

        let tag = try await ChildProcess.runRondo(["checkpoints", "tag", "v2", "production", "--data-dir", directory])
        #expect(tag.status == 0 && tag.output.contains("tagged v2 as production"), "\(tag.output)")
        for reference in ["v2", "2", "production"] {
            let show = try await ChildProcess.runRondo([
                "checkpoints", "show", reference, "--json", "--data-dir", directory,
            ])
            let detail = Self.json(show.output)
            #expect((detail["checkpoint"] as? [String: Any])?["version"] as? Int == 2, "\(reference): \(show.output)")
            #expect(detail["refs"] as? [String] == ["production"])
            #expect((detail["tensors"] as? [[String: Any]])?.isEmpty == false, "show --json lists the tensors")
        }
        let best = try #require(try await store.refVersion(.best))
        for (reference, version) in [("current", 4), ("best", best)] {
            let show = try await ChildProcess.runRondo(["checkpoints", "show", reference, "--data-dir", directory])
            #expect(show.status == 0 && show.output.contains("version             v\(version)"), "\(show.output)")
        }
        let diff = try await ChildProcess.runRondo([
            "checkpoints", "diff", "v1", "production", "--json", "--data-dir", directory,
        ])
        #expect(Self.json(diff.output)["to_version"] as? Int == 2, "\(diff.output)")
        let export = try await ChildProcess.runRondo([
            "checkpoints", "export", "production", "-o", directory + "/production.safetensors", "--data-dir", directory,
        ])
        #expect(export.status == 0 && export.output.contains("wrote v2"), "\(export.output)")

        // A version the guard rejected: refused without --force, and nothing moves.
        let refused = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "v\(rejected)", "--reason", "drill", "--data-dir", directory,
        ])
        #expect(refused.status == 1 && refused.output.contains("rejected"), "\(refused.output)")
        #expect(refused.output.contains("--force"), "the refusal says how to go ahead: \(refused.output)")
        #expect(try await store.refVersion(.current) == 4)
        let refusedJSON = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "v\(rejected)", "--reason", "drill", "--json", "--data-dir", directory,
        ])
        #expect(
            (Self.json(refusedJSON.output)["error"] as? [String: Any])?["code"] as? String == "force_required",
            "\(refusedJSON.output)")
        let forced = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "v\(rejected)", "--reason", "drill", "--force", "--data-dir", directory,
        ])
        #expect(forced.status == 0 && forced.output.contains("v4 -> v\(rejected) (forced)"), "\(forced.output)")
        let events = try await ChildProcess.runRondo([
            "events", "--kind", "rollback", "--json", "--data-dir", directory,
        ])
        let event = try #require((Self.json(events.output)["events"] as? [[String: Any]])?.first, "\(events.output)")
        #expect((event["detail"] as? [String: String])?["forced"] == "true")
        let actor = event["actor"] as? String ?? ""
        #expect(actor.hasPrefix("cli:") && actor.contains("@") && !actor.contains("unknown"), "\(actor)")

        // Refs and tags roll back too.
        let back = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "production", "--reason", "back to the tagged model", "--data-dir", directory,
        ])
        #expect(back.status == 0 && back.output.contains("-> v2"), "\(back.output)")
    }

    @Test func oneJSONStyleAndErrorsThatAreOneLine() async throws {
        let directory = try await CheckpointCLITests.demoDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outputs = try await [
            ("rounds", ChildProcess.runRondo(["rounds", "--json", "--data-dir", directory])),
            ("clients", ChildProcess.runRondo(["clients", "--json", "--data-dir", directory])),
            ("checkpoints", ChildProcess.runRondo(["checkpoints", "list", "--json", "--data-dir", directory])),
            ("events", ChildProcess.runRondo(["events", "--json", "--data-dir", directory])),
        ]
        for (wrapper, output) in outputs {
            #expect(output.status == 0, "\(output.output)")
            let object = Self.json(output.output)
            let items = try #require(
                object[wrapper] as? [[String: Any]], "one wrapper, named for its items: \(output.output)")
            #expect(!items.isEmpty)
            for item in items {
                for key in item.keys { #expect(key == key.lowercased() && !key.contains("-"), "snake_case: \(key)") }
            }
            #expect(!Self.strings(in: object).contains("-"), "absent values are null, never \"-\": \(output.output)")
        }
        let round = try #require((Self.json(outputs[0].1.output)["rounds"] as? [[String: Any]])?.first)
        #expect(Self.isRFC3339(round["started_at"]), "\(round)")
        #expect(round.keys.contains("reason") && round["reason"] is NSNull, "null, not a missing key: \(round)")
        let client = try #require((Self.json(outputs[1].1.output)["clients"] as? [[String: Any]])?.first)
        #expect(client["presence"] as? String == "left" || client["presence"] as? String == "silent", "\(client)")
        #expect(Self.isRFC3339(client["last_seen"]), "\(client)")

        let limited = try await ChildProcess.runRondo([
            "checkpoints", "list", "--limit", "2", "--json", "--data-dir", directory,
        ])
        #expect((Self.json(limited.output)["checkpoints"] as? [[String: Any]])?.count == 2, "\(limited.output)")

        let dryRun = try await ChildProcess.runRondo([
            "checkpoints", "prune", "--keep-last", "1", "--dry-run", "--data-dir", directory,
        ])
        #expect(dryRun.status == 0 && dryRun.output.contains("would delete"), "\(dryRun.output)")
        let stillThere = try await ChildProcess.runRondo(["checkpoints", "list", "--json", "--data-dir", directory])
        #expect(
            (Self.json(stillThere.output)["checkpoints"] as? [[String: Any]])?.count == 4, "a dry run deletes nothing")

        // A runtime error: exit 1 and one line, no usage text; JSON with --json.
        let unknown = try await ChildProcess.runRondo(["checkpoints", "show", "v999", "--data-dir", directory])
        #expect(unknown.status == 1, "\(unknown.output)")
        #expect(
            unknown.output.split(separator: "\n").count == 1 && !unknown.output.contains("USAGE"), "\(unknown.output)")
        let unknownJSON = try await ChildProcess.runRondo([
            "checkpoints", "show", "v999", "--json", "--data-dir", directory,
        ])
        #expect(unknownJSON.status == 1)
        #expect((Self.json(unknownJSON.output)["error"] as? [String: Any])?["code"] as? String == "unknown_checkpoint")
        let noDatabase = try await ChildProcess.runRondo(["status", "--json", "--data-dir", directory + "/nowhere"])
        #expect(noDatabase.status == 1)
        #expect((Self.json(noDatabase.output)["error"] as? [String: Any])?["code"] as? String == "no_database")
        let notRunning = try await ChildProcess.runRondo(["status", "--data-dir", directory])
        #expect(notRunning.status == 1 && notRunning.output.contains("no coordinator runs"), "\(notRunning.output)")
        // A command line that does not parse is a usage error: 64, with the usage text.
        let badFlag = try await ChildProcess.runRondo(["checkpoints", "list", "--no-such-flag"])
        #expect(badFlag.status == 64 && badFlag.output.contains("Usage"), "\(badFlag.output)")
    }
}
