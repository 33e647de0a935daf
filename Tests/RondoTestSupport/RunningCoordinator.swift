import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import Logging
import ServiceLifecycle

/// A real coordinator on 127.0.0.1 (ephemeral port unless one is given), run in its own `ServiceGroup` for
/// one test and stopped by `stop()`.
public final class RunningCoordinator: Sendable {
    public let server: CoordinatorServer
    public let port: Int
    public let http = CurlHTTPClient()
    private let group: ServiceGroup
    private let runner: Task<Void, any Error>

    public var url: String { "http://127.0.0.1:\(port)" }
    public var driver: RoundDriver { server.driver }

    public static let testModel = ModelWeights([
        "weight": Tensor(shape: [2, 3], values: [0, 0, 0, 0, 0, 0]), "bias": Tensor(shape: [2], values: [0, 0]),
    ])

    public init(configuration: CoordinatorConfiguration, initialWeights: ModelWeights = RunningCoordinator.testModel)
        async throws
    {
        var logger = Logger(label: "test-coordinator")
        logger.logLevel = .warning
        var configuration = configuration
        configuration.host = "127.0.0.1"
        let server = try await CoordinatorServer(
            configuration: configuration, repository: InMemoryModelRepository(), initialWeights: initialWeights,
            logger: logger)
        let group = ServiceGroup(services: server.services, logger: logger)
        self.server = server
        self.group = group
        self.runner = Task { try await group.run() }
        self.port = await server.port()
    }

    /// Small, fast rounds for tests: one client suffices, no evaluation unless asked.
    public static func configuration(
        port: Int = 0, clients: Int = 1, minFitResults: Int = 1, fractionEvaluate: Double = 0,
        fitTimeout: Duration = .seconds(30), maxRounds: Int? = nil, maxUpdateBytes: Int = 1 << 20
    ) -> CoordinatorConfiguration {
        CoordinatorConfiguration(
            host: "127.0.0.1", port: port,
            rounds: RoundConfiguration(
                selection: SelectionPolicy(
                    fractionFit: 1, minFitClients: max(minFitResults, 1), minAvailableClients: clients,
                    fractionEvaluate: fractionEvaluate),
                minFitResults: minFitResults, fitTimeout: fitTimeout, evaluateTimeout: .seconds(10),
                livenessTimeout: .seconds(10), maxRounds: maxRounds),
            limits: .init(maxUpdateBytes: maxUpdateBytes, maxJSONBytes: 64 << 10),
            heartbeatInterval: .milliseconds(200), tickInterval: .milliseconds(20))
    }

    /// Runs `body` against a fresh coordinator and stops it afterwards, whether `body` returns or throws.
    public static func with<R>(
        configuration: CoordinatorConfiguration, _ body: (RunningCoordinator) async throws -> R
    ) async throws -> R {
        let coordinator = try await RunningCoordinator(configuration: configuration)
        do {
            let result = try await body(coordinator)
            await coordinator.stop()
            return result
        } catch {
            await coordinator.stop()
            throw error
        }
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

    /// Registers a client; returns its id and token.
    public func register(_ name: String) async throws -> (id: String, token: String) {
        let response = try await request(
            "POST", "/v1/clients", contentType: "application/json", body: Array(#"{"name":"\#(name)"}"#.utf8))
        let answer = try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(response.body))
        return (answer.clientID, answer.token)
    }

    public func status() async throws -> WireProtocol.StatusMessage {
        try JSONDecoder().decode(
            WireProtocol.StatusMessage.self, from: Data(try await request("GET", "/v1/status").body))
    }
}

extension HTTPResponse {
    /// The `error.code` of a JSON error body, if it is one.
    public var errorCode: String? {
        (try? JSONDecoder().decode(WireProtocol.ErrorMessage.self, from: Data(body)))?.error.code
    }
}
