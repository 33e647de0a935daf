import Coordinator
import CurlHTTP
import FederationCore
import FederationTelemetry
import Foundation
import Logging
import RondoTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// What a standby answers, over real HTTP: enough for a load balancer, Prometheus and clients, nothing more.
@Suite struct StandbyServerTests {
    final class Leader: Sendable {
        let info = Mutex<LeaderInfo?>(nil)
    }

    @Test func aStandbyIsAliveNotReadyAndSendsEveryCallToTheLeader() async throws {
        let leader = Leader()
        let factory = CatalogueMetricsFactory()
        LeadershipMetrics(factory: factory).standingBy(leaseAgeSeconds: 0.5)
        var configuration = RunningCoordinator.configuration()
        configuration.metricsToken = "metrics-token-0123456789"
        let port = Mutex<Int?>(nil)
        let standby = try StandbyServer(
            configuration: configuration, leader: { leader.info.withLock { $0 } }, renderMetrics: factory.render,
            logger: Logger(label: "standby-test"), onListening: { bound in port.withLock { $0 = bound } })
        let group = ServiceGroup(services: [standby.application], logger: Logger(label: "standby-test"))
        let runner = Task { try await group.run() }
        defer { runner.cancel() }
        while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        let url = "http://127.0.0.1:\(port.withLock { $0 } ?? 0)"
        let http = CurlHTTPClient()
        defer { http.shutdown() }

        #expect(try await http.execute(HTTPRequest(url: url + "/healthz")).status == 200)
        var ready = try await http.execute(HTTPRequest(url: url + "/readyz"))
        #expect(ready.status == 503)
        #expect(ready.text.contains("\"status\":\"standby\""))

        // No leader known yet: clients are told to retry, with no one named.
        var call = try await http.execute(
            HTTPRequest(
                method: "POST", url: url + "/v1/clients", headers: [("Content-Type", "application/json")],
                body: Array("{}".utf8)))
        #expect(call.status == 503)
        #expect(call.header("Retry-After") == "1")
        #expect(call.header("Rondo-Leader") == nil)
        #expect(call.text.contains("\"code\":\"not_leader\""))

        leader.info.withLock { $0 = LeaderInfo(address: "http://10.0.0.5:8470", secondsSinceRenewal: 0.2) }
        for path in ["/v1/status", "/v1/clients/c-1/tasks/next", "/v1/models/3", "/anything", "/readyz/../v1/status"] {
            call = try await http.execute(HTTPRequest(url: url + path, headers: [("Authorization", "Bearer x")]))
            #expect(call.status == 503, "\(path)")
            #expect(call.header("Rondo-Leader") == "http://10.0.0.5:8470", "\(path)")
        }
        ready = try await http.execute(HTTPRequest(url: url + "/readyz"))
        #expect(ready.text.contains("\"leader\":\"http:\\/\\/10.0.0.5:8470\"") || ready.text.contains("10.0.0.5:8470"))

        // Metrics keep their token on a standby too.
        #expect(try await http.execute(HTTPRequest(url: url + "/metrics")).status == 401)
        let metrics = try await http.execute(
            HTTPRequest(url: url + "/metrics", headers: [("Authorization", "Bearer metrics-token-0123456789")]))
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("rondo_leader 0"))
        #expect(metrics.text.contains("rondo_leader_lease_age_seconds 0.5"))
        await group.triggerGracefulShutdown()
    }
}
