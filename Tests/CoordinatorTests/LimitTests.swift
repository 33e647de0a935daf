@testable import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Each configured limit refuses with its status, JSON code and counter, and leaves the federation as it was.
@Suite struct LimitTests {
    static let json = "application/json"

    @Test func clientLimitAndRegistrationRate() async throws {
        var configuration = RunningCoordinator.configuration(clients: 5)
        configuration.limits.maxClients = 2
        configuration.limits.registrationsPerSecond = 0.5  // one every 2 s, bursts of 1
        let clock = ManualClock()
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let body = Array(#"{"name":"site"}"#.utf8)
            #expect(
                try await coordinator.request("POST", "/v1/clients", contentType: Self.json, body: body).status == 201)
            let limited = try await coordinator.request("POST", "/v1/clients", contentType: Self.json, body: body)
            #expect(limited.status == 429 && limited.errorCode == "rate_limited", "\(limited.text)")
            #expect(limited.header("Retry-After").flatMap(Int.init) == 2)
            clock.advance(by: .milliseconds(1900))
            let early = try await coordinator.request("POST", "/v1/clients", contentType: Self.json, body: body)
            #expect(early.status == 429, "0.1 s before the bucket refills: \(early.text)")
            clock.advance(by: .milliseconds(100))
            #expect(
                try await coordinator.request("POST", "/v1/clients", contentType: Self.json, body: body).status == 201)
            clock.advance(by: .seconds(2))
            let full = try await coordinator.request("POST", "/v1/clients", contentType: Self.json, body: body)
            #expect(full.status == 409 && full.errorCode == "client_limit_reached", "\(full.text)")
            #expect(try await coordinator.status().clientsRegistered == 2)
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="clients"}"#) == 1)
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="register_rate"}"#) == 2)
        }
    }

    @Test func submissionRatePerClient() async throws {
        var configuration = RunningCoordinator.configuration(clients: 3)
        configuration.limits.refusedSubmissionsPerClientPerSecond = 0.5  // bursts of 1
        let clock = ManualClock()
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let noisy = try await coordinator.register("noisy")
            let quiet = try await coordinator.register("quiet")
            let body = Array(#"{"message":"x"}"#.utf8)
            func submit(_ token: String) async throws -> Int {
                try await coordinator.request(
                    "POST", "/v1/tasks/1-fit-1/failure", token: token, contentType: Self.json, body: body
                ).status
            }
            #expect(try await submit(noisy.token) == 404)
            #expect(try await submit(noisy.token) == 429, "the second submission within two seconds is refused")
            #expect(try await submit(quiet.token) == 404, "another client has its own budget")
            clock.advance(by: .seconds(2))
            #expect(try await submit(noisy.token) == 404, "two seconds later the budget has refilled")
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="submit_rate"}"#) == 1)
        }
    }

    /// Waits (in real time, bounded) until the driver has `count` polls parked: the request is on its way.
    static func waitForParkedPolls(_ count: Int, in coordinator: RunningCoordinator) async throws {
        for _ in 0..<1000 where await coordinator.driver.parkedPollCount != count { await Task.yield() }
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while await coordinator.driver.parkedPollCount != count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await coordinator.driver.parkedPollCount == count)
    }

    @Test func parkedLongPollLimit() async throws {
        var configuration = RunningCoordinator.configuration(clients: 5)
        configuration.limits.maxParkedPolls = 1
        let clock = ManualClock()
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let first = try await coordinator.register("first")
            let second = try await coordinator.register("second")
            async let parked = coordinator.request(
                "GET", "/v1/clients/\(first.id)/tasks/next?wait_seconds=30", token: first.token)
            try await Self.waitForParkedPolls(1, in: coordinator)
            let refused = try await coordinator.request(
                "GET", "/v1/clients/\(second.id)/tasks/next?wait_seconds=30", token: second.token)
            #expect(refused.status == 429 && refused.errorCode == "too_many_polls", "\(refused.text)")
            clock.advance(by: .seconds(30))
            await coordinator.driver.tick()
            #expect(try await parked.status == 204, "the poll's 30 s passed")
            async let again = coordinator.request(
                "GET", "/v1/clients/\(second.id)/tasks/next?wait_seconds=1", token: second.token)
            try await Self.waitForParkedPolls(1, in: coordinator)
            clock.advance(by: .seconds(1))
            await coordinator.driver.tick()
            #expect(try await again.status == 204, "the slot is free once the first poll returned")
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="long_polls"}"#) == 1)
        }
    }

    @Test func aConnectionThatSendsNothingIsClosed() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.limits.idleTimeout = .seconds(1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(coordinator.port)).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            #expect(connected == 0)
            _ = "GET /heal".withCString { send(fd, $0, 9, 0) }  // a request head that never ends
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let started = ContinuousClock.now
            var buffer = [UInt8](repeating: 0, count: 64)
            let read = recv(fd, &buffer, buffer.count, 0)
            #expect(read == 0, "the server closed the stalled connection")
            // Bounds leave room for a loaded machine (tests run in parallel): without the idle timeout the socket
            // would stay open and the read time out at 30 s.
            #expect(started.duration(to: .now) < .seconds(20))
        }
    }

    /// A kept-alive connection is closed after `keepAliveTimeout` of silence, well before `idleTimeout`, and a
    /// second request inside it is served on the same connection.
    @Test func aKeptAliveConnectionIsClosedAfterTheKeepAliveTimeout() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.limits.keepAliveTimeout = .seconds(1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let connection = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(30))
            defer { connection.close() }
            for _ in 0..<2 {
                #expect(connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
                #expect(await connection.readResponse()?.status == 200)
            }
            let started = ContinuousClock.now
            let rest = await connection.readUntilClosed()
            #expect(rest.closed && rest.text.isEmpty, "closed without another answer")
            // Room for a loaded machine, far from the 60 s idle timeout.
            #expect(
                started.duration(to: .now) < .seconds(20), "closed by the 1 s keep-alive, not the 60 s idle timeout")
        }
    }

    /// With a heartbeat interval longer than the keep-alive timeout, a heartbeat's answer closes its connection:
    /// it would otherwise sit idle until the keep-alive timeout closed it anyway.
    @Test func aHeartbeatLongerThanTheKeepAliveClosesItsConnection() async throws {
        var configuration = RunningCoordinator.configuration()
        // A third of the liveness timeout, 40 s, is over the 30 s keep-alive; the margin tells a close by the
        // answer from one by the keep-alive timeout even on a loaded machine.
        configuration.rounds.livenessTimeout = .seconds(120)
        configuration.heartbeatInterval = nil
        configuration.limits.keepAliveTimeout = .seconds(30)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("beating")
            let connection = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(40))
            defer { connection.close() }
            #expect(
                connection.send(
                    "POST /v1/clients/\(client.id)/heartbeat HTTP/1.1\r\nHost: x\r\n"
                        + "Authorization: Bearer \(client.token)\r\nContent-Length: 0\r\n\r\n"))
            let started = ContinuousClock.now
            let answer = await connection.readUntilClosed()
            #expect(answer.text.hasPrefix("HTTP/1.1 204"))
            #expect(answer.text.lowercased().contains("connection: close"))
            #expect(answer.closed && started.duration(to: .now) < .seconds(15), "closed by the answer, not at 30 s")
        }
    }
}
