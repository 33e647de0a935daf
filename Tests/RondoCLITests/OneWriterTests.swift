import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One writer per data directory: while a coordinator runs, `rondo` commands that change the federation go
/// through its admin API (and take effect at once), writes without an API are refused, and a second
/// coordinator cannot start on the same directory.
@Suite struct OneWriterTests {
    @Test func operatorCommandsGoThroughTheRunningCoordinator() async throws {
        let live = try await ServedCoordinator([
            "--min-available-clients", "1", "--min-fit-clients", "1", "--min-fit-results", "1", "--fit-timeout", "600",
            "--log-level", "notice",
        ])
        defer { live.stop() }
        let (server, directory, port) = (live.server, live.directory, live.port)
        let lock = try String(contentsOfFile: directory + "/rondo.lock", encoding: .utf8)
        #expect(lock.contains("http://127.0.0.1:\(port)"), "the lock file says where the coordinator listens: \(lock)")

        // A client holds round 1's fit task, so the round is open.
        let registered = try await live.call("POST", "/v1/clients", json: #"{"name":"site"}"#)
        let client = try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(registered.body))
        let task = try await live.call(
            "GET", "/v1/clients/\(client.clientID)/tasks/next?wait_seconds=10", token: client.token)
        #expect(task.status == 200)

        let tag = try await ChildProcess.runRondo(["checkpoints", "tag", "1", "stable", "--data-dir", directory])
        #expect(tag.status == 0, "\(tag.output)")
        let refs = try await live.object("/v1/checkpoints")["refs"] as? [String: Int]
        #expect(refs?["stable"] == 1)

        let rollback = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "1", "--reason", "drill", "--data-dir", directory,
        ])
        #expect(rollback.status == 0, "\(rollback.output)")
        // The coordinator carried it out itself: round 1 is aborted now, not after a database poll.
        let round = try await live.object("/v1/rounds/1")
        #expect(round["status"] as? String == "aborted", "\(round)")

        let revoke = try await ChildProcess.runRondo([
            "clients", "revoke", client.clientID, "--reason", "drill", "--data-dir", directory,
        ])
        #expect(revoke.status == 0, "\(revoke.output)")
        let refused = try await live.call("POST", "/v1/clients/\(client.clientID)/heartbeat", token: client.token)
        #expect(refused.status == 403, "refused from the moment the command returned")

        let pause = try await ChildProcess.runRondo(["federation", "pause", "--data-dir", directory])
        #expect(pause.status == 0, "\(pause.output)")
        let paused = try await live.object("/v1/status")
        #expect(paused["paused"] as? Bool == true)

        let events = try await live.object("/v1/events")["events"] as? [[String: Any]] ?? []
        let actors = Dictionary(
            events.map { ($0["kind"] as? String ?? "", $0["actor"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        for kind in ["tag", "rollback", "client_revoked", "federation_paused"] {
            // The admin token authorises; the CLI names its OS user and host beside it.
            #expect(
                actors[kind]?.hasPrefix("admin:admin (") == true && actors[kind]?.contains("@") == true,
                "\(kind) went through the admin API: \(actors)")
        }

        let unknown = try await ChildProcess.runRondo(["clients", "revoke", "c-nobody", "--data-dir", directory])
        #expect(unknown.status != 0 && unknown.output.contains("unknown_client"), "\(unknown.output)")

        let model = directory + "/../model.safetensors"
        let export = try await ChildProcess.runRondo([
            "checkpoints", "export", "1", "--output", model, "--data-dir", directory,
        ])
        #expect(export.status == 0, "reads need no lock: \(export.output)")
        let importing = try await ChildProcess.runRondo(["checkpoints", "import", model, "--data-dir", directory])
        #expect(
            importing.status != 0 && importing.output.contains("a coordinator runs"),
            "an import has no API; it is refused while a coordinator runs: \(importing.output)")

        let before = try await live.object("/v1/rounds?limit=1")
        let second = try await ChildProcess.runRondo(
            ["serve", "--port", "0", "--data-dir", directory, "--demo-model", "--open-enrolment"],
            timeout: .seconds(40))
        #expect(
            second.status != 0 && second.output.contains("another process holds the data directory"),
            "\(second.output)")
        // The refused second coordinator touched nothing: the first one's rounds are as they were.
        let after = try await live.object("/v1/rounds?limit=1")
        #expect(
            (after["rounds"] as? [[String: Any]])?.first?["status"] as? String
                == (before["rounds"] as? [[String: Any]])?.first?["status"] as? String, "\(before) \(after)")
        #expect(try await live.object("/v1/status")["phase"] as? String != nil)

        server.send(signal: SIGTERM)
        server.send(signal: SIGTERM)
        #expect(try await server.waitForExit(timeout: .seconds(15)))
        let afterwards = try await ChildProcess.runRondo(["checkpoints", "import", model, "--data-dir", directory])
        #expect(afterwards.status == 0, "with no coordinator the command writes the store: \(afterwards.output)")
        let nothingToPause = try await ChildProcess.runRondo(["federation", "pause", "--data-dir", directory])
        #expect(nothingToPause.status != 0 && nothingToPause.output.contains("no coordinator runs"))
    }
}
