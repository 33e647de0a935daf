import Coordinator
import CurlHTTP
import Foundation
import RondoTestSupport
import Testing

/// A real Prometheus (Debian's `prometheus`) scraping a coordinator that serves HTTPS and requires a `/metrics`
/// bearer token, configured with the settings `Prometheus/prometheus.yml` documents in its comments
/// (`authorization.credentials_file`, `scheme: https`, `tls_config.ca_file`): only the job that trusts the CA
/// and sends the token gets `up == 1`.
@Suite struct PrometheusScrapeAuthTests {
    static let metricsToken = "scrape-token-0123456789abcdef"

    @Test func onlyAScrapeWithTheTokenAndTheCASucceeds() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        var configuration = RunningCoordinator.configuration()
        configuration.metricsToken = Self.metricsToken
        configuration.tls = ServerTLS(
            certificateChainPath: certificates.certificateFile, privateKeyPath: certificates.keyFile)
        try await RunningCoordinator.with(configuration: configuration, trusting: certificates.caFile) {
            (coordinator: RunningCoordinator) async throws in
            let work = certificates.directory
            let tokenFile = work + "/metrics-token"
            try Self.metricsToken.write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let target = "[\"127.0.0.1:\(coordinator.port)\"]"
            func job(_ name: String, _ settings: String) -> String {
                """
                  - job_name: \(name)
                    metrics_path: /metrics
                    scheme: https
                    static_configs: [{targets: \(target)}]
                \(settings)
                """
            }
            let config = """
                global: {scrape_interval: 1s}
                scrape_configs:
                \(job("rondo", "    authorization: {credentials_file: \(tokenFile)}\n    tls_config: {ca_file: \(certificates.caFile)}"))
                \(job("without-token", "    tls_config: {ca_file: \(certificates.caFile)}"))
                \(job("without-ca", "    authorization: {credentials_file: \(tokenFile)}"))
                """
            try config.write(toFile: work + "/prometheus.yml", atomically: true, encoding: .utf8)
            let port = try ChildProcess.freePort()
            let prometheus = try ChildProcess(
                "/usr/bin/prometheus",
                [
                    "--config.file=\(work)/prometheus.yml", "--storage.tsdb.path=\(work)/tsdb",
                    "--web.listen-address=127.0.0.1:\(port)",
                ])
            defer { prometheus.terminate() }

            let http = CurlHTTPClient()
            defer { http.shutdown() }
            var up: [String: String] = [:]
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            // Until the authorised job's scrape succeeds: a first scrape of a loaded coordinator may time out
            // (the 1 s interval is also the scrape timeout), and the refused jobs stay at 0 whatever happens.
            while !(up.count == 3 && up["rondo"] == "1"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
                let request = HTTPRequest(url: "http://127.0.0.1:\(port)/api/v1/query?query=up", timeout: .seconds(5))
                guard let response = try? await http.execute(request), response.status == 200 else { continue }
                up = try Self.upByJob(Data(response.body))
            }
            #expect(up == ["rondo": "1", "without-token": "0", "without-ca": "0"], "\(prometheus.collectedOutput)")
            // The token-less job's scrapes were refused and counted.
            let refused = try await coordinator.metricValue(
                "rondo_auth_refusals_total{reason=\"unauthenticated\"}", token: Self.metricsToken)
            #expect((refused ?? 0) >= 1)
        }
    }

    /// `{job: value}` from a Prometheus instant-query answer for `up`.
    static func upByJob(_ body: Data) throws -> [String: String] {
        struct Answer: Decodable {
            struct Series: Decodable {
                let metric: [String: String]
                let value: [Value]
            }
            enum Value: Decodable {
                case number(Double), text(String)
                init(from decoder: any Decoder) throws {
                    let container = try decoder.singleValueContainer()
                    if let text = try? container.decode(String.self) {
                        self = .text(text)
                    } else {
                        self = .number(try container.decode(Double.self))
                    }
                }
            }
            struct Data: Decodable { let result: [Series] }
            let data: Data
        }
        var up: [String: String] = [:]
        for series in try JSONDecoder().decode(Answer.self, from: body).data.result {
            if let job = series.metric["job"], case .text(let value)? = series.value.last { up[job] = value }
        }
        return up
    }
}
