import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Synchronization
import Testing

/// Registrations are group-committed: a SIGKILL in the middle of a registration burst loses none that was
/// answered 201.
@Suite(.serialized) struct RegistrationCrashTests {
    /// What the registering streams saw: the registrations answered 201, and the streams cut off by the kill.
    final class Tally: Sendable {
        let acknowledged = Mutex<[WireProtocol.RegistrationResponse]>([])
        let cutOff = Atomic<Int>(0)
    }

    static func startServer(directory: String, port: Int) async throws -> ChildProcess {
        let process = try ChildProcess(
            ChildProcess.rondoBinary,
            [
                "serve", "--port", String(port), "--data-dir", directory, "--demo-model", "--open-enrolment",
                "--registrations-per-second", "1000000", "--max-clients", "1000000",
                "--min-available-clients", "1000000", "--log-level", "error",
            ])
        try await process.waitForOutput("listening on")
        return process
    }

    @Test func everyAcknowledgedRegistrationSurvivesASigkill() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freePort()
        let url = "http://127.0.0.1:\(port)"
        let http = CurlHTTPClient()
        defer { http.shutdown() }
        let killed = try await Self.startServer(directory: directory, port: port)
        let tally = Tally()
        // Sixteen streams register back to back until the coordinator is killed under them.
        await withTaskGroup(of: Void.self) { group in
            for stream in 0..<16 {
                group.addTask {
                    for index in 0... {
                        let request = HTTPRequest(
                            method: "POST", url: url + "/v1/clients", headers: [("Content-Type", "application/json")],
                            body: Array(#"{"name":"burst-\#(stream)-\#(index)"}"#.utf8), timeout: .seconds(10))
                        guard let response = try? await http.execute(request) else {
                            tally.cutOff.add(1, ordering: .relaxed)
                            return
                        }
                        guard response.status == 201,
                            let answer = try? JSONDecoder().decode(
                                WireProtocol.RegistrationResponse.self, from: Data(response.body))
                        else { continue }
                        tally.acknowledged.withLock { $0.append(answer) }
                    }
                }
            }
            group.addTask {
                while tally.acknowledged.withLock({ $0.count }) < 300 { try? await Task.sleep(for: .milliseconds(5)) }
                killed.kill()
            }
        }
        let answered = tally.acknowledged.withLock { $0 }
        #expect(answered.count >= 300)
        #expect(tally.cutOff.load(ordering: .relaxed) == 16, "every stream ran until the kill")

        let server = try await Self.startServer(directory: directory, port: port)
        defer { server.terminate() }
        // Every acknowledged client's token works after the restart: its row and token hash were on disk.
        var refused: [String] = []
        for chunk in stride(from: 0, to: answered.count, by: 64) {
            let statuses = await withTaskGroup(of: (String, Int).self) { group in
                for registration in answered[chunk..<min(chunk + 64, answered.count)] {
                    group.addTask {
                        let response = try? await http.execute(
                            HTTPRequest(
                                method: "POST", url: url + "/v1/clients/\(registration.clientID)/heartbeat",
                                headers: [("Authorization", "Bearer \(registration.token)")], timeout: .seconds(10)))
                        return (registration.clientID, response?.status ?? 0)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            refused += statuses.filter { $0.1 != 204 }.map(\.0)
        }
        #expect(refused.isEmpty, "\(refused.count) of \(answered.count) acknowledged clients were lost")
        print("registration crash: \(answered.count) acknowledged before SIGKILL, all enrolled after restart")
    }
}
