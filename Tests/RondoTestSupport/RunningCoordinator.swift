import Coordinator
import CurlHTTP
import FederationCore
import FederationTelemetry
import Foundation
import Logging
import ModelManager
import ServiceLifecycle
import Testing

/// A real coordinator on 127.0.0.1 (ephemeral port unless one is given), run in its own `ServiceGroup` for
/// one test and stopped by `stop()`.
public final class RunningCoordinator: Sendable {
    public let server: CoordinatorServer
    public let port: Int
    /// The data directory (a fresh temporary one unless given); holds `rondo.db`.
    public let directory: String
    public static let adminToken = "test-admin-token-0123456789abcdef"
    /// A read-only (viewer) admin token.
    public static let viewerToken = "test-viewer-token-0123456789abcdef"
    /// Trusts the CA file given to `init`, so requests work when the coordinator serves HTTPS.
    public let http: CurlHTTPClient
    /// `https://127.0.0.1:PORT` when the configuration has `tls`, else `http://…`.
    public let url: String
    private let group: ServiceGroup
    private let runner: Task<Void, any Error>

    public var driver: RoundDriver { server.driver }

    public static let testModel = ModelWeights([
        "weight": Tensor(shape: [2, 3], values: [0, 0, 0, 0, 0, 0]), "bias": Tensor(shape: [2], values: [0, 0]),
    ])

    public init(
        configuration: CoordinatorConfiguration, initialWeights: ModelWeights = RunningCoordinator.testModel,
        in existingDirectory: String? = nil, tracer: RondoTracer = RondoTracer(sink: nil),
        trusting caFile: String? = nil, clock: any CoordinatorClock = SystemClock()
    ) async throws {
        var logger = Logger(label: "test-coordinator")
        logger.logLevel = .warning
        var configuration = configuration
        configuration.host = "127.0.0.1"
        let dataDirectory = existingDirectory ?? RunningCoordinator.temporaryDirectory()
        let store = try await CheckpointStore(configuration: .init(path: dataDirectory + "/rondo.db"))
        let server = try await CoordinatorServer(
            configuration: configuration, store: store, adminToken: Self.adminToken, viewerToken: Self.viewerToken,
            initialWeights: initialWeights, logger: logger, tracer: tracer, clock: clock)
        self.directory = dataDirectory
        let group = ServiceGroup(services: server.services, logger: logger)
        self.server = server
        self.group = group
        self.runner = Task { try await group.run() }
        self.port = await server.port()
        self.url = "\(configuration.urlScheme)://127.0.0.1:\(port)"
        self.http = CurlHTTPClient(configuration: .init(caFile: caFile))
    }

    /// Small, fast rounds for tests: one client suffices, no evaluation unless asked.
    public static func configuration(
        port: Int = 0, clients: Int = 1, minFitResults: Int = 1, fractionEvaluate: Double = 0,
        fitTimeout: Duration = .seconds(30), maxRounds: Int? = nil, maxUpdateBytes: Int = 1 << 20,
        regressionGuard: RegressionGuard? = nil
    ) -> CoordinatorConfiguration {
        CoordinatorConfiguration(
            host: "127.0.0.1", port: port,
            rounds: RoundConfiguration(
                selection: SelectionPolicy(
                    fractionFit: 1, minFitClients: max(minFitResults, 1), minAvailableClients: clients,
                    fractionEvaluate: fractionEvaluate),
                minFitResults: minFitResults, fitTimeout: fitTimeout, evaluateTimeout: .seconds(10),
                livenessTimeout: .seconds(10), maxRounds: maxRounds, regressionGuard: regressionGuard),
            limits: .init(maxUpdateBytes: maxUpdateBytes, maxJSONBytes: 64 << 10, registrationsPerSecond: 10_000),
            heartbeatInterval: .milliseconds(200), tickInterval: .milliseconds(20), drainTimeout: .zero)
    }

    /// A new, empty directory under the system's temporary directory.
    public static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-test-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `body` against a fresh coordinator and stops it afterwards, whether `body` returns or throws;
    /// its temporary data directory is removed.
    public static func with<R>(
        configuration: CoordinatorConfiguration, trusting caFile: String? = nil,
        initialWeights: ModelWeights = RunningCoordinator.testModel,
        clock: any CoordinatorClock = SystemClock(), _ body: (RunningCoordinator) async throws -> R
    ) async throws -> R {
        let coordinator = try await RunningCoordinator(
            configuration: configuration, initialWeights: initialWeights, trusting: caFile, clock: clock)
        defer { try? FileManager.default.removeItem(atPath: coordinator.directory) }
        do {
            let result = try await body(coordinator)
            await coordinator.stop()
            return result
        } catch {
            await coordinator.stop()
            throw error
        }
    }

    /// Starts graceful shutdown (as SIGTERM does) without waiting for it; `stop()` waits.
    public func beginShutdown() async {
        await group.triggerGracefulShutdown()
    }

    /// The value of the series `line` (name with labels, as rendered) in the coordinator's `/metrics`.
    public func metricValue(_ series: String, token: String? = nil) async throws -> Double? {
        let text = try await request("GET", "/metrics", token: token).text
        return text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Stops the server and the driver and waits for both.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await runner.value
        http.shutdown()
    }

    /// One raw request to the coordinator.
    public func request(
        _ method: String, _ path: String, token: String? = nil, contentType: String? = nil, body: [UInt8]? = nil,
        headers: [(name: String, value: String)] = []
    ) async throws -> HTTPResponse {
        var all = headers
        if let token { all.append(("Authorization", "Bearer \(token)")) }
        if let contentType { all.append(("Content-Type", contentType)) }
        return try await http.execute(
            HTTPRequest(method: method, url: url + path, headers: all, body: body, timeout: .seconds(30)))
    }

    /// Long-polls (up to 10 s) for the client's next task.
    public func nextTask(_ client: (id: String, token: String)) async throws -> WireProtocol.TaskMessage {
        let response = try await request(
            "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=10", token: client.token)
        return try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
    }

    /// Registers a client; returns its id and token.
    public func register(_ name: String) async throws -> (id: String, token: String) {
        let response = try await request(
            "POST", "/v1/clients", contentType: "application/json", body: Array(#"{"name":"\#(name)"}"#.utf8))
        let answer = try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(response.body))
        return (answer.clientID, answer.token)
    }

    /// Polls `/v1/status` until `condition` holds (up to about 10 s) and returns that status; records an issue
    /// and returns the last status when it never does.
    public func waitForStatus(
        _ condition: (WireProtocol.StatusMessage) -> Bool
    ) async throws -> WireProtocol.StatusMessage {
        for _ in 0..<500 {
            let status = try await status()
            if condition(status) { return status }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("status condition not reached within 10 s")
        return try await status()
    }

    public func status() async throws -> WireProtocol.StatusMessage {
        let response = try await request("GET", "/v1/status", token: Self.adminToken)
        return try JSONDecoder().decode(WireProtocol.StatusMessage.self, from: Data(response.body))
    }
}

extension HTTPResponse {
    /// The `error.code` of a JSON error body, if it is one.
    public var errorCode: String? {
        (try? JSONDecoder().decode(WireProtocol.ErrorMessage.self, from: Data(body)))?.error.code
    }
}
