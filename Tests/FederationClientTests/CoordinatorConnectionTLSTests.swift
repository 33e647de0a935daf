import Coordinator
import FederationClient
import Foundation
import RondoTestSupport
import Testing

/// The SDK over HTTPS: it verifies the coordinator's certificate, trusts a pinned CA file, and gives up at once
/// (no retry loop) when the certificate is not trusted.
@Suite struct CoordinatorConnectionTLSTests {
    static func tlsConfiguration(_ certificates: TestCertificates) -> CoordinatorConfiguration {
        var configuration = RunningCoordinator.configuration(clients: 2, minFitResults: 2, maxRounds: 2)
        configuration.tls = ServerTLS(
            certificateChainPath: certificates.certificateFile, privateKeyPath: certificates.keyFile)
        return configuration
    }

    @Test func aFederationCompletesOverHTTPSWithAPinnedCA() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        try await RunningCoordinator.with(
            configuration: Self.tlsConfiguration(certificates), trusting: certificates.caFile
        ) {
            (coordinator: RunningCoordinator) async throws in
            let clients = (0..<2).map { index in
                FederatedClient(
                    configuration: .init(
                        coordinatorURL: coordinator.url, name: "tls-site-\(index)", caFile: certificates.caFile),
                    trainer: IncrementingTrainer(), longPoll: .seconds(2), logger: FederatedClientTests.logger)
            }
            let status = try await FederatedClientTests.participate(clients, on: coordinator) { $0.phase == .finished }
            #expect(status.committedRounds == 2 && status.modelVersion == 3)
            #expect(await coordinator.driver.currentModel.weights["bias"]?.floatValues == [2, 2])
        }
    }

    @Test func aClientThatDoesNotTrustTheCertificateIsRefusedWithoutRetrying() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        try await RunningCoordinator.with(
            configuration: Self.tlsConfiguration(certificates), trusting: certificates.caFile
        ) {
            (coordinator: RunningCoordinator) async throws in
            // No CA file: the system store is used, and it does not hold the test CA.
            let client = FederatedClient(
                configuration: .init(coordinatorURL: coordinator.url, name: "untrusting"),
                trainer: IncrementingTrainer(), retry: RetryPolicy(maxAttempts: 50), logger: FederatedClientTests.logger
            )
            let started = ContinuousClock.now
            await #expect {
                try await client.participate()
            } throws: { ($0 as? FederationClientError)?.code == .untrustedServer }
            // Not retried with backoff: fifty attempts would take far longer than this.
            #expect(ContinuousClock.now - started < .seconds(10))
            // A CA file that is not a certificate at all is a configuration error of the same kind.
            let wrongFile = CoordinatorConnection(
                configuration: .init(coordinatorURL: coordinator.url, name: "bad-ca", caFile: certificates.keyFile))
            await #expect {
                try await wrongFile.register()
            } throws: { ($0 as? FederationClientError)?.code == .untrustedServer }
            #expect(try await coordinator.status().clientsRegistered == 0)
        }
    }
}
