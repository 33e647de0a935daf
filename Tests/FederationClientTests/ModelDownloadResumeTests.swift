import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import FederationClient

/// A client on a flaky link resumes a cut model download instead of starting over: it asks for the rest with
/// `Range` and `If-Range` (the model's ETag), so a model that changed meanwhile is never spliced onto the old.
@Suite struct ModelDownloadResumeTests {
    /// 1 MB of F32 that is not all one value, so a splice at the wrong offset would show.
    static let model = ModelWeights([
        "w": Tensor(shape: [250_000], values: (0..<250_000).map { Float($0 % 9973) * 0.001 })
    ])

    @Test func aDownloadCutHalfwayResumesFromTheBytesReceived() async throws {
        try await RunningCoordinator.with(
            configuration: RunningCoordinator.configuration(clients: 5), initialWeights: Self.model
        ) { coordinator in
            let proxy = try CuttingProxy(upstreamPort: coordinator.port, cutAfter: 500_000)
            defer { proxy.stop() }
            let connection = CoordinatorConnection(
                configuration: .init(coordinatorURL: "http://127.0.0.1:\(proxy.port)", name: "flaky"))
            try await connection.register()
            let status = try await coordinator.status()
            let weights = try await connection.model(version: status.modelVersion, sha256: status.modelSHA256)
            #expect(weights == Self.model, "the resumed download is the model, checked against its SHA-256")
            #expect(await connection.downloadResumes == 1)
            let models = proxy.requestHeads.filter { $0.hasPrefix("GET /v1/models/") }
            try #require(models.count == 2, "\(models)")
            #expect(!models[0].lowercased().contains("range:"), "the first request asks for the whole model")
            let range = try #require(
                models[1].split(separator: "\r\n").first { $0.lowercased().hasPrefix("range: bytes=") })
            let offset = try #require(Int(range.dropFirst("range: bytes=".count).dropLast()))
            // The cut came 500,000 bytes into the answer, head included: the body got a little less.
            #expect(offset > 400_000 && offset < 500_000, "resumed from the bytes received: \(range)")
            #expect(models[1].contains("If-Range: \"\(status.modelSHA256)\""), "\(models[1])")
        }
    }

    @Test func aRangeThatDoesNotContinueTheBytesHeldStartsOver() {
        var download = ResumableDownload(sha256: "abc")
        var done: Bool
        let first = HTTPResponse(status: 200, headers: ["content-length": "10"], body: [0, 1, 2, 3])
        done = download.take(first, complete: false)
        #expect(!done)
        #expect(download.rangeHeaders.map(\.value) == ["bytes=4-", "\"abc\""])
        let misplaced = HTTPResponse(status: 206, headers: ["content-range": "bytes 5-9/10"], body: [5, 6, 7, 8, 9])
        done = download.take(misplaced, complete: true)
        #expect(!done, "a gap is never spliced over")
        #expect(download.bytes.isEmpty && download.rangeHeaders.isEmpty, "the next request is for the whole model")
        done = download.take(first, complete: false)
        #expect(!done)
        let otherTotal = HTTPResponse(status: 206, headers: ["content-range": "bytes 4-11/12"], body: Array(4..<12))
        done = download.take(otherTotal, complete: true)
        #expect(!done, "another total is another model")
        #expect(download.bytes.isEmpty)
        done = download.take(first, complete: false)
        #expect(!done)
        let rest = HTTPResponse(status: 206, headers: ["content-range": "bytes 4-9/10"], body: [4, 5, 6, 7, 8, 9])
        done = download.take(rest, complete: true)
        #expect(done)
        #expect(download.bytes == Array(0..<10))
        var changed = ResumableDownload(sha256: "abc")
        _ = changed.take(first, complete: false)
        let whole = HTTPResponse(status: 200, headers: [:], body: [9, 9, 9])
        done = changed.take(whole, complete: true)
        #expect(done, "If-Range stale: the whole new model replaces the bytes held")
        #expect(changed.bytes == [9, 9, 9])
    }
}
