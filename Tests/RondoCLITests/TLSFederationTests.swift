import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// `rondo serve --tls-cert --tls-key` with real `rondo client` processes, on a certificate `openssl` made.
@Suite struct TLSFederationTests {
    static let adminToken = "tls-admin-token-0123456789"
    static let enrolmentToken = "tls-enrolment-token-0123456789"

    @Test func aFederationCompletesOverHTTPSAndAnUntrustingClientIsRefused() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freePort()
        let server = try ChildProcess(
            ChildProcess.rondoBinary,
            [
                "serve", "--port", String(port), "--data-dir", directory, "--demo-model", "--admin-token",
                Self.adminToken,
                "--enrolment-token", Self.enrolmentToken, "--rounds", "2", "--log-level", "warning",
            ],
            environment: ["RONDO_TLS_CERT": certificates.certificateFile, "RONDO_TLS_KEY": certificates.keyFile])
        defer { server.terminate() }
        let url = "https://127.0.0.1:\(port)"
        try await server.waitForOutput("listening on \(url)")

        // A site that does not pin the CA exits at once with the reason, and never registers.
        let refused = try await ChildProcess.runRondo(
            [
                "client", "--coordinator", url, "--partition", "0/2", "--enrolment-token", Self.enrolmentToken,
                "--log-level", "error",
            ], timeout: .seconds(30))
        #expect(refused.status != 0)
        #expect(refused.output.contains("untrusted_server"), "\(refused.output)")

        let clients = try (0..<2).map { index in
            try ChildProcess(
                ChildProcess.rondoBinary,
                [
                    "client", "--coordinator", url, "--partition", "\(index)/2", "--ca-file", certificates.caFile,
                    "--enrolment-token", Self.enrolmentToken, "--log-level", "error",
                ])
        }
        defer { clients.forEach { $0.terminate() } }
        let http = CurlHTTPClient(configuration: .init(caFile: certificates.caFile))
        defer { http.shutdown() }
        var status: WireProtocol.StatusMessage?
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while status?.phase != .finished, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let request = HTTPRequest(
                url: url + "/v1/status", headers: [("Authorization", "Bearer \(Self.adminToken)")],
                timeout: .seconds(5))
            if let response = try? await http.execute(request), response.status == 200 {
                status = try JSONDecoder().decode(WireProtocol.StatusMessage.self, from: Data(response.body))
            }
        }
        #expect(status?.phase == .finished, "\(server.collectedOutput.suffix(2000))")
        #expect(status?.committedRounds == 2 && status?.modelVersion == 3)
        #expect(status?.clientsRegistered == 2)
        let verify = try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory])
        #expect(verify.status == 0, "\(verify.output)")
    }
}
