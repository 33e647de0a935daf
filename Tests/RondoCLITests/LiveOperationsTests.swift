import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// A running `rondo serve` as on-call sees it: clients that go silent are named in the log and shown as such,
/// a restarted site re-registers as the same client, `rondo status` shows the effective configuration, and
/// every rollback counts.
@Suite(.serialized) struct LiveOperationsTests {
    @Test func silentClientsAreNamedAndARestartedSiteIsTheSameClient() async throws {
        let live = try await ServedCoordinator([
            "--min-available-clients", "3", "--min-fit-clients", "3", "--min-fit-results", "3",
            "--liveness-timeout", "5", "--fit-config", "learning_rate=0.1", "--log-level", "info",
        ])
        defer { live.stop() }
        let (server, directory) = (live.server, live.directory)
        #expect(server.collectedOutput.contains("effective configuration"), "serve logs its configuration at start")
        #expect(server.collectedOutput.contains(#"learning_rate"#))

        func register(_ name: String, key: String?) async throws -> WireProtocol.RegistrationResponse {
            let body = try JSONEncoder().encode(WireProtocol.RegistrationRequest(name: name, identityKey: key))
            let answer = try await live.call("POST", "/v1/clients", json: String(decoding: body, as: UTF8.self))
            #expect(answer.status == 201, "\(String(decoding: answer.body, as: UTF8.self))")
            return try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(answer.body))
        }
        let key = "site-a-secret-key-0123456789"
        let siteA = try await register("site-a", key: key)
        let siteB = try await register("site-b", key: nil)

        // site-a keeps long-polling (a parked poll is liveness); site-b says nothing more.
        let poller = Task {
            while !Task.isCancelled {
                _ = try? await live.call(
                    "GET", "/v1/clients/\(siteA.clientID)/tasks/next?wait_seconds=10", token: siteA.token)
            }
        }
        defer { poller.cancel() }
        // Within the liveness timeout (5 s) of its last request, one line names the silent site.
        var silentLine: Substring?
        for _ in 0..<300 where silentLine == nil {
            silentLine = server.collectedOutput.split(separator: "\n").first {
                $0.contains("client went silent") && $0.contains(siteB.clientID)
            }
            if silentLine == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(silentLine?.contains("site-b") == true, "\(server.collectedOutput.suffix(2000))")
        #expect(
            !server.collectedOutput.split(separator: "\n").contains {
                $0.contains("client went silent") && $0.contains(siteA.clientID)
            }, "a client holding a long-poll is alive")

        let clients = try await ChildProcess.runRondo(["clients", "--json", "--data-dir", directory])
        let rows = OperatorCLITests.json(clients.output)["clients"] as? [[String: Any]] ?? []
        let presence = Dictionary(
            rows.map { ($0["name"] as? String ?? "", $0["presence"] as? String ?? "") }, uniquingKeysWith: { a, _ in a }
        )
        #expect(presence == ["site-a": "connected", "site-b": "silent"], "\(clients.output)")
        let table = try await ChildProcess.runRondo(["clients", "--data-dir", directory])
        #expect(table.output.contains("PRESENCE") && table.output.contains("SILENT"), "\(table.output)")

        // A restarted site-a registers under its identity key: the same client, a new token.
        let again = try await register("site-a", key: key)
        #expect(again.clientID == siteA.clientID && again.token != siteA.token)
        let old = try await live.call("POST", "/v1/clients/\(siteA.clientID)/heartbeat", token: siteA.token)
        #expect(old.status == 401, "the old token stops working")
        let fresh = try await live.call("POST", "/v1/clients/\(siteA.clientID)/heartbeat", token: again.token)
        #expect(fresh.status / 100 == 2)
        let other = try await register("site-c", key: "another-site-key-0123456789")
        #expect(other.clientID != siteA.clientID)
        let short = try await live.call("POST", "/v1/clients", json: #"{"name":"x","identity_key":"short"}"#)
        #expect(short.status == 400 && String(decoding: short.body, as: UTF8.self).contains("invalid_identity_key"))
        let afterRestart = try await live.object("/v1/status")
        #expect(afterRestart["clients_registered"] as? Int == 3, "no ghost row: \(afterRestart)")

        // rondo status: the effective configuration, through the admin API.
        let status = try await ChildProcess.runRondo(["status", "--data-dir", directory])
        #expect(status.status == 0 && status.output.contains("learning_rate=0.1"), "\(status.output)")
        let statusJSON = OperatorCLITests.json(
            try await ChildProcess.runRondo(["status", "--json", "--data-dir", directory]).output)
        #expect(
            (statusJSON["configuration"] as? [String: Any])?["fit_config"] as? [String: String]
                == ["learning_rate": "0.1"], "\(statusJSON)")
        #expect(statusJSON["phase"] as? String != nil && statusJSON["current_version"] as? Int == 1)

        // pause / resume / abort.
        #expect(try await ChildProcess.runRondo(["pause", "--data-dir", directory]).status == 0)
        #expect(try await live.object("/v1/status")["paused"] as? Bool == true)
        #expect(try await ChildProcess.runRondo(["resume", "--data-dir", directory]).status == 0)
        #expect(try await live.object("/v1/status")["paused"] as? Bool == false)
        let abort = try await ChildProcess.runRondo(["rounds", "abort", "--data-dir", directory])
        #expect(abort.status == 1 && abort.output.contains("no_open_round"), "\(abort.output)")

        // Six quick rollbacks count six times.
        for index in 0..<6 {
            let rollback = try await ChildProcess.runRondo([
                "checkpoints", "rollback", "v1", "--reason", "drill \(index)", "--data-dir", directory,
            ])
            #expect(rollback.status == 0, "\(rollback.output)")
        }
        let metrics = try await live.call("GET", "/metrics")
        #expect(String(decoding: metrics.body, as: UTF8.self).contains(#"rondo_rollbacks_total{trigger="manual"} 6"#))
        let events = OperatorCLITests.json(
            try await ChildProcess.runRondo(["events", "--kind", "rollback", "--json", "--data-dir", directory]).output)
        let actors = (events["events"] as? [[String: Any]] ?? []).compactMap { $0["actor"] as? String }
        #expect(
            actors.count == 6 && actors.allSatisfy { $0.hasPrefix("admin:admin (") && $0.contains("@") }, "\(actors)")
    }
}
