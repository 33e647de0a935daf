import CurlHTTP
import Foundation
import RondoTestSupport

/// A `rondo serve` child process on a fresh data directory, reached over its admin API as the CLI would be.
/// `stop()` kills it and removes the directory.
final class ServedCoordinator: Sendable {
    let server: ChildProcess
    /// The data directory (inside a temporary directory of its own).
    let directory: String
    let port: Int
    let http: CurlHTTPClient
    let url: String
    /// The admin token the coordinator generated into the data directory.
    let adminToken: String

    /// Starts `rondo serve --port P --data-dir D --demo-model --open-enrolment` plus `arguments`, and waits until
    /// it listens.
    init(_ arguments: [String]) async throws {
        directory = RunningCoordinator.temporaryDirectory() + "/data"
        port = try ChildProcess.freePort()
        server = try ChildProcess(
            ChildProcess.rondoBinary,
            ["serve", "--port", String(port), "--data-dir", directory, "--demo-model", "--open-enrolment"] + arguments)
        url = "http://127.0.0.1:\(port)"
        http = CurlHTTPClient(configuration: .init())
        do {
            try await server.waitForOutput("listening on")
            adminToken = try String(contentsOfFile: directory + "/admin-token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            server.kill()
            http.shutdown()
            throw error
        }
    }

    func stop() {
        server.kill()
        http.shutdown()
        try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
    }

    func call(_ method: String, _ path: String, token: String? = nil, json: String? = nil) async throws
        -> HTTPResponse
    {
        var headers = [("Authorization", "Bearer \(token ?? adminToken)")]
        if json != nil { headers.append(("Content-Type", "application/json")) }
        return try await http.execute(
            HTTPRequest(
                method: method, url: url + path, headers: headers, body: json.map { Array($0.utf8) },
                timeout: .seconds(20)))
    }

    func object(_ path: String) async throws -> [String: Any] {
        let response = try await call("GET", path)
        return try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
    }
}
