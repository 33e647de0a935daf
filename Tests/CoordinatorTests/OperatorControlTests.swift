import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import ModelManager
import RondoTestSupport
import Testing

/// Roles, revocation, pause/resume, abort and draining on a live coordinator with a real SQLite file.
@Suite struct OperatorControlTests {
    static let admin = RunningCoordinator.adminToken
    static let viewer = RunningCoordinator.viewerToken
    static let json = "application/json"

    enum Caller: String, CaseIterable {
        case none, bad, otherClient, revoked, viewer, `operator`, own
    }

    /// Every endpoint that needs a token × every kind of caller, against the documented answer.
    @Test func authMatrix() async throws {
        var configuration = RunningCoordinator.configuration(clients: 3)
        configuration.rounds.maxRounds = 0  // no round: tasks and results stay unknown, nothing moves
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let own = try await coordinator.register("own")
            let other = try await coordinator.register("other")
            let gone = try await coordinator.register("gone")
            let revoked = try await coordinator.request("POST", "/v1/clients/\(gone.id)/revoke", token: Self.admin)
            #expect(revoked.status == 200, "\(revoked.text)")

            func token(_ caller: Caller) -> String? {
                switch caller {
                case .none: nil
                case .bad: "not-a-token-of-this-federation"
                case .otherClient: other.token
                case .revoked: gone.token
                case .viewer: Self.viewer
                case .operator: Self.admin
                case .own: own.token
                }
            }
            // Client endpoints: only the client itself; admin tokens are not client tokens.
            let clientEndpoints: [(String, String, [UInt8]?, Int)] = [
                ("POST", "/v1/clients/\(own.id)/heartbeat", nil, 204),
                ("GET", "/v1/clients/\(own.id)/tasks/next?wait_seconds=0", nil, 204),
                ("GET", "/v1/models/current", nil, 200),
                ("POST", "/v1/tasks/1-fit-1/failure", Array(#"{"message":"x"}"#.utf8), 404),
            ]
            for (method, path, body, ownStatus) in clientEndpoints {
                for caller in Caller.allCases {
                    let response = try await coordinator.request(
                        method, path, token: token(caller), contentType: Self.json, body: body)
                    let expected: (Int, String?) =
                        switch caller {
                        case .own: (ownStatus, nil)
                        case .revoked: (403, "revoked")
                        case .otherClient where path.contains(own.id): (403, "forbidden")
                        case .otherClient: (ownStatus, nil)  // not id-scoped: any live client may
                        default: (401, "unauthenticated")
                        }
                    #expect(response.status == expected.0, "\(method) \(path) as \(caller): \(response.text)")
                    if let code = expected.1 { #expect(response.errorCode == code, "\(method) \(path) as \(caller)") }
                }
            }
            // Admin endpoints: read ones for viewer and operator, actions for the operator only.
            let reads = [
                "/v1/status", "/v1/rounds", "/v1/clients", "/v1/checkpoints", "/v1/checkpoints/1",
                "/v1/checkpoints/1/weights", "/v1/events",
            ]
            let actions: [(String, String, Int)] = [
                ("/v1/federation/pause", "{}", 200), ("/v1/federation/resume", "{}", 200),
                ("/v1/rounds/current/abort", "{}", 409), ("/v1/checkpoints/1/tags", #"{"tag":"prod"}"#, 200),
                ("/v1/checkpoints/1/rollback", #"{"reason":"drill"}"#, 200),
                ("/v1/clients/\(other.id)/revoke", #"{"reason":"matrix"}"#, 200),
            ]
            for caller in Caller.allCases {
                for path in reads {
                    let response = try await coordinator.request("GET", path, token: token(caller))
                    let allowed = caller == .viewer || caller == .operator
                    #expect(response.status == (allowed ? 200 : 401), "GET \(path) as \(caller): \(response.text)")
                }
            }
            for caller in Caller.allCases where caller != .operator && caller != .otherClient {
                for (path, body, _) in actions {
                    let response = try await coordinator.request(
                        "POST", path, token: token(caller), contentType: Self.json, body: Array(body.utf8))
                    let expected = caller == .viewer ? 403 : 401
                    #expect(response.status == expected, "POST \(path) as \(caller): \(response.text)")
                }
            }
            let eventsBefore = try await coordinator.driver.history.events(limit: 1000, kind: nil).count
            for (path, body, status) in actions {
                let response = try await coordinator.request(
                    "POST", path, token: Self.admin, contentType: Self.json, body: Array(body.utf8))
                #expect(response.status == status, "POST \(path) as operator: \(response.text)")
            }
            // pause, resume, tag, rollback and revoke each left an audit event naming the token.
            let events = try await coordinator.driver.history.events(limit: 1000, kind: nil)
            #expect(events.count - eventsBefore == 5, "\(events.map(\.kind))")
            #expect(events.prefix(5).allSatisfy { $0.actor == "admin:admin" }, "\(events.prefix(5).map(\.actor))")
            #expect(try await coordinator.metricValue(#"rondo_auth_refusals_total{reason="revoked"}"#) ?? 0 >= 4)
            #expect(try await coordinator.metricValue(#"rondo_admin_actions_total{action="pause"}"#) == 1)
        }
    }

    @Test func pauseHoldsNewRoundsAndResumeStartsOne() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
            let paused = try await coordinator.request(
                "POST", "/v1/federation/pause", token: Self.admin,
                headers: [("traceparent", "00-\(traceID)-00f067aa0ba902b7-01")])
            #expect(paused.status == 200)
            let client = try await coordinator.register("site")
            let idle = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=0.5", token: client.token)
            #expect(idle.status == 204, "no task while paused")
            let status = try await coordinator.status()
            #expect(status.paused && status.round == 0)
            #expect(try await coordinator.metricValue("rondo_federation_paused") == 1)
            let event = try await coordinator.driver.history.events(limit: 1, kind: .federationPaused).first
            #expect(event?.traceID == traceID && event?.actor == "admin:admin")

            #expect(try await coordinator.request("POST", "/v1/federation/resume", token: Self.admin).status == 200)
            let resumed = try await coordinator.waitForStatus { $0.round == 1 && !$0.paused }
            #expect(resumed.phase == .training)
        }
    }

    @Test func abortEndsTheOpenRoundAndRecordsWhy() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let client = try await coordinator.register("site")
            _ = try await coordinator.waitForStatus { $0.phase == .training }
            // Paused first, so the abort does not start the next round straight away.
            _ = try await coordinator.request("POST", "/v1/federation/pause", token: Self.admin)
            let task = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=5", token: client.token)
            let taskID = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(task.body)).taskID
            let abort = try await coordinator.request(
                "POST", "/v1/rounds/current/abort", token: Self.admin, contentType: Self.json,
                body: Array(#"{"reason":"bad data at site 3"}"#.utf8))
            #expect(abort.status == 200 && abort.text.contains(#""aborted_round":1"#), "\(abort.text)")
            let again = try await coordinator.request("POST", "/v1/rounds/current/abort", token: Self.admin)
            #expect(again.status == 409 && again.errorCode == "no_open_round")

            let round = try await coordinator.driver.history.round(1)
            #expect(round?.status == .aborted && round?.detail == "bad data at site 3", "\(String(describing: round))")
            let late = try await coordinator.request(
                "POST", "/v1/tasks/\(taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType,
                body: FitResult(weights: RunningCoordinator.testModel, numExamples: 1).file.encoded())
            #expect(late.status == 409, "a result for the aborted round is refused: \(late.text)")
            #expect(try await coordinator.status().committedRounds == 0)
        }
    }

    @Test func registrationNeedsTheEnrolmentTokenWhenOneIsSet() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.enrolmentToken = "enrol-0123456789abcdef"
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let body = Array(#"{"name":"site"}"#.utf8)
            for token in [nil, "enrol-wrong-0123456789", Self.admin] {
                let refused = try await coordinator.request(
                    "POST", "/v1/clients", token: token, contentType: Self.json, body: body)
                #expect(refused.status == 401 && refused.errorCode == "unauthenticated", "\(token ?? "no token")")
            }
            #expect(try await coordinator.status().clientsRegistered == 0, "refused registrations leave nothing")
            let accepted = try await coordinator.request(
                "POST", "/v1/clients", token: "enrol-0123456789abcdef", contentType: Self.json, body: body)
            #expect(accepted.status == 201, "\(accepted.text)")
        }
    }

    @Test func metricsCanRequireABearerToken() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.metricsToken = "scrape-token-0123456789abcdef"
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let open = try await coordinator.request("GET", "/metrics")
            #expect(open.status == 401 && open.errorCode == "unauthenticated")
            let scraped = try await coordinator.request("GET", "/metrics", token: "scrape-token-0123456789abcdef")
            #expect(scraped.status == 200 && scraped.text.contains("rondo_round "))
        }
    }

    @Test func sigtermDrainsTheOpenRoundBeforeStopping() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.drainTimeout = .seconds(20)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("site")
            let response = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=5", token: client.token)
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
            await coordinator.beginShutdown()
            let draining = try await coordinator.waitForStatus { $0.draining }
            #expect(draining.phase == .training)
            let resume = try await coordinator.request("POST", "/v1/federation/resume", token: Self.admin)
            #expect(resume.status == 409 && resume.errorCode == "draining", "a drain keeps the federation paused")
            #expect(try await coordinator.request("GET", "/readyz").status == 503)
            _ = try await coordinator.request("POST", "/v1/federation/resume", token: Self.admin)
            #expect(try await coordinator.status().paused, "a resume does not undo draining")
            let submitted = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType,
                body: FitResult(weights: AdminAPITests.weights(1), numExamples: 3).file.encoded())
            #expect(submitted.status == 202, "results are still taken while draining: \(submitted.text)")
            await coordinator.stop()
            let round = try await coordinator.driver.history.round(task.round)
            #expect(round?.status == .committed, "the drained round committed: \(String(describing: round))")
            #expect(
                try await coordinator.driver.history.rounds(limit: 100).count == 1, "no round started while draining")
        }
    }
}
