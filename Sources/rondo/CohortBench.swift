import ArgumentParser
import CurlHTTP
import FederationCore
import Foundation
import Synchronization

/// `rondo bench cohort`: many connected clients at once. Starts `rondo serve` as a separate process (no round
/// ever starts: it waits for more clients than come), registers `--clients` clients at `--ramp` per second
/// over real HTTP, and keeps each one connected for `--hold` seconds the way the SDKs do: a long-poll parked
/// at all times and a heartbeat at the interval the coordinator hands out. `/metrics` is scraped meanwhile.
/// Reports the coordinator's RSS and CPU during the hold, and latency percentiles by request kind.
///
/// Clients run on libcurl (a few multi handles, each on its own thread) in this process, so no interpreter
/// lock caps them.
struct CohortBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Hold N connected clients against a separate `rondo serve`; report RSS, CPU and latencies.")

    @Option(help: "Clients to register and keep connected.") var clients = 1000
    @Option(help: "Registrations per second while ramping up.") var ramp = 1000
    @Option(help: "Seconds to hold every client connected after the ramp.") var hold = 60
    @Option(help: "Seconds each long-poll waits before the coordinator answers 204.") var pollWait = 30
    @Option(help: "Seconds between two /metrics scrapes.") var scrapeInterval = 2.0
    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Heartbeat beside the parked long-poll (the worst case). With --no-heartbeat-while-parked clients "
                + "behave like the SDKs, which heartbeat only while they work on a task: a parked poll is itself a "
                + "sign of life."))
    var heartbeatWhileParked = true
    @Option(help: "Run this rondo binary as the coordinator instead of this one.") var coordinator: String?
    @Option(help: "Pass --poll-rate to the coordinator (pace steering; 0 turns it off; default: its own).")
    var pollRate: Double?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        guard clients >= 1, ramp >= 1, hold >= 1, pollWait >= 1, scrapeInterval > 0 else {
            throw ValidationError("--clients, --ramp, --hold, --poll-wait and --scrape-interval must be positive")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-cohort-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try BenchCoordinator(
            directory: directory,
            arguments: [
                "--demo-model", "--open-enrolment", "--min-available-clients", String(clients + 1),
                // The ramp is the load under test, not the registration limit's: let it all in.
                "--registrations-per-second", String(ramp * 2), "--log-level", "error",
            ] + (pollRate.map { ["--poll-rate", String($0)] } ?? []), executable: coordinator)
        defer { server.stop() }
        let url = try await server.waitUntilListening()
        let startRSS = server.residentKB() ?? 0

        // A handful of libcurl multi loops share the clients; each runs on its own thread.
        let pool = (0..<4).map { _ in CurlHTTPClient() }
        defer { pool.forEach { $0.shutdown() } }
        // Its own loop, so what is measured is the coordinator, not a queue behind the clients' transfers.
        let scraper = CurlHTTPClient()
        defer { scraper.shutdown() }
        let samples = CohortSamples()
        let origin = ContinuousClock.now
        let rampEnd = origin.advanced(by: .seconds(Double(clients) / Double(ramp)))
        let holdEnd = rampEnd.advanced(by: .seconds(hold))
        var holdStart: (cpu: Double, at: ContinuousClock.Instant)?

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Self.scrape(url: url, http: scraper, every: scrapeInterval, until: holdEnd, into: samples)
            }
            for index in 0..<clients {
                // Paced: client `index` registers at origin + index / ramp.
                let due = origin.advanced(by: .seconds(Double(index) / Double(ramp)))
                if due > .now { try await Task.sleep(until: due) }
                let client = CohortClient(
                    http: pool[index % pool.count], url: url, name: "cohort-\(index)", pollWait: pollWait,
                    heartbeats: heartbeatWhileParked)
                group.addTask { await client.stayConnected(until: holdEnd, into: samples) }
            }
            if rampEnd > .now { try await Task.sleep(until: rampEnd) }
            holdStart = (server.cpuSeconds() ?? 0, .now)
            try await group.waitForAll()
        }
        let holdSeconds = holdStart.map { $0.at.duration(to: .now).seconds } ?? 0
        let cpuPerMinute = ((server.cpuSeconds() ?? 0) - (holdStart?.cpu ?? 0)) / max(holdSeconds, 1e-9) * 60
        let report = samples.report(
            clients: clients, ramp: ramp, hold: hold, startRSSMB: Double(startRSS) / 1000,
            endRSSMB: Double(server.residentKB() ?? 0) / 1000, peakRSSMB: Double(server.peakResidentKB() ?? 0) / 1000,
            cpuSecondsPerMinute: cpuPerMinute)
        print(json ? try report.jsonText() : report.text)
    }

    private static func scrape(
        url: String, http: CurlHTTPClient, every interval: Double, until end: ContinuousClock.Instant,
        into samples: CohortSamples
    ) async throws {
        while ContinuousClock.now < end {
            let started = ContinuousClock.now
            do {
                let response = try await http.execute(HTTPRequest(url: url + "/metrics", timeout: .seconds(30)))
                samples.record(.metrics, status: response.status, seconds: started.duration(to: .now).seconds)
            } catch {
                samples.failed(.metrics, CohortSamples.name(of: error))
            }
            try await Task.sleep(for: .seconds(interval))
        }
    }
}

/// One simulated client: registers, then until the end keeps a long-poll parked and (unless `heartbeats` is
/// off) heartbeats at the interval the coordinator handed out, recording each request's latency.
struct CohortClient: Sendable {
    let http: CurlHTTPClient
    let url: String
    let name: String
    let pollWait: Int
    /// Whether to heartbeat beside the parked poll.
    let heartbeats: Bool

    func stayConnected(until end: ContinuousClock.Instant, into samples: CohortSamples) async {
        let started = ContinuousClock.now
        let registration: WireProtocol.RegistrationResponse
        do {
            let response = try await http.execute(
                HTTPRequest(
                    method: "POST", url: url + "/v1/clients", headers: [("Content-Type", "application/json")],
                    body: Array(#"{"name":"\#(name)"}"#.utf8), timeout: .seconds(60)))
            samples.record(.register, status: response.status, seconds: started.duration(to: .now).seconds)
            guard response.status == 201 || response.status == 200 else { return }
            registration = try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(response.body))
        } catch {
            samples.failed(.register, CohortSamples.name(of: error))
            return
        }
        let authorization = ("Authorization", "Bearer \(registration.token)")
        let interval = max(registration.heartbeatIntervalSeconds, 0.1)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while ContinuousClock.now < end {
                    let wait = min(pollWait, max(1, Int(ContinuousClock.now.duration(to: end).seconds.rounded(.up))))
                    let polled = ContinuousClock.now
                    do {
                        let response = try await http.execute(
                            HTTPRequest(
                                url: url + "/v1/clients/\(registration.clientID)/tasks/next?wait_seconds=\(wait)",
                                headers: [authorization], timeout: .seconds(Double(wait) + 30)))
                        // A 204 comes after the wait; what is measured is how late it comes.
                        let late = polled.duration(to: .now).seconds - (response.status == 204 ? Double(wait) : 0)
                        samples.record(.poll, status: response.status, seconds: max(late, 0))
                        // As the SDKs do: wait out pace steering's (204) or a throttle's (429) Retry-After.
                        if let hint = response.header("Retry-After").flatMap({ Int($0) }), hint > 0 {
                            let resume = min(ContinuousClock.now.advanced(by: .seconds(hint)), end)
                            try? await Task.sleep(until: resume)
                        }
                    } catch {
                        samples.failed(.poll, CohortSamples.name(of: error))
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
            group.addTask {
                while heartbeats, ContinuousClock.now.advanced(by: .seconds(interval)) < end {
                    try? await Task.sleep(for: .seconds(interval))
                    let beat = ContinuousClock.now
                    do {
                        let response = try await http.execute(
                            HTTPRequest(
                                method: "POST", url: url + "/v1/clients/\(registration.clientID)/heartbeat",
                                headers: [authorization], timeout: .seconds(30)))
                        samples.record(.heartbeat, status: response.status, seconds: beat.duration(to: .now).seconds)
                    } catch {
                        samples.failed(.heartbeat, CohortSamples.name(of: error))
                    }
                }
            }
        }
    }
}
