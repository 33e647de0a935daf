import Coordinator
import CurlHTTP
import Foundation
import RondoTestSupport
import Testing

/// The coordinator's own HTTPS listener, with a CA and certificate made by `openssl` for each test.
@Suite struct ServerTLSTests {
    @Test func servesHTTPSOnlyToClientsThatTrustItsCA() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        var configuration = RunningCoordinator.configuration()
        configuration.tls = ServerTLS(
            certificateChainPath: certificates.certificateFile, privateKeyPath: certificates.keyFile)
        try await RunningCoordinator.with(configuration: configuration, trusting: certificates.caFile) {
            (coordinator: RunningCoordinator) async throws in
            #expect(coordinator.url.hasPrefix("https://127.0.0.1:"))
            #expect(try await coordinator.request("GET", "/healthz").status == 200)
            #expect(try await coordinator.status().phase == .selecting)
            #expect(try await coordinator.register("over-tls").token.count == 64)

            // The system trust store does not know the test CA: the handshake is refused before any request.
            let untrusting = CurlHTTPClient()
            defer { untrusting.shutdown() }
            await #expect {
                try await untrusting.execute(HTTPRequest(url: coordinator.url + "/healthz", timeout: .seconds(5)))
            } throws: { ($0 as? CurlTransferError)?.isCertificateFailure == true }

            // Plain HTTP to the TLS port gets no answer at all, never a response in the clear.
            let plain = "http://127.0.0.1:\(coordinator.port)/healthz"
            await #expect(throws: CurlTransferError.self) {
                try await untrusting.execute(HTTPRequest(url: plain, timeout: .seconds(5)))
            }
            #expect(try await coordinator.status().clientsRegistered == 1)
        }
    }

    enum BadFiles: CaseIterable, Sendable {
        case missingCertificate, garbageCertificate, missingKey, keyOfAnotherCertificate
    }

    /// Each kind of unusable file stops start-up with its own code; no server is left listening.
    @Test(arguments: BadFiles.allCases) func unusableFilesStopStartUp(_ bad: BadFiles) async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let garbage = certificates.directory + "/garbage.pem"
        try "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
            .write(toFile: garbage, atomically: true, encoding: .utf8)
        let missing = certificates.directory + "/missing.pem"
        let (certificate, key, code): (String, String, ServerTLSError.Code) =
            switch bad {
            case .missingCertificate: (missing, certificates.keyFile, .unreadableCertificate)
            case .garbageCertificate: (garbage, certificates.keyFile, .unreadableCertificate)
            case .missingKey: (certificates.certificateFile, missing, .unreadablePrivateKey)
            case .keyOfAnotherCertificate: (certificates.certificateFile, certificates.caKeyFile, .keyMismatch)
            }
        var configuration = RunningCoordinator.configuration()
        configuration.tls = ServerTLS(certificateChainPath: certificate, privateKeyPath: key)
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let error = await #expect(throws: ServerTLSError.self) {
            _ = try await RunningCoordinator(configuration: configuration, in: directory)
        }
        #expect(error?.code == code, "\(String(describing: error))")
        #expect(error?.message.contains(code == .unreadablePrivateKey ? key : certificate) == true)
    }
}
