import CurlHTTP
import FederationCore
import ModelManager
import Foundation
import RondoTestSupport
import Testing

@testable import Coordinator

/// Model downloads resume: `Range` (with `If-Range`) serves any part of the one shared buffer, and the parts
/// put together are the model, with its SHA-256.
@Suite struct ModelRangeTests {
    @Test func rangeHeadersParseAsTheRFCSays() {
        #expect(ByteRange(header: "bytes=0-99", total: 1000) == .partial(0...99))
        #expect(ByteRange(header: "bytes=900-", total: 1000) == .partial(900...999))
        #expect(ByteRange(header: "bytes=-100", total: 1000) == .partial(900...999))
        #expect(ByteRange(header: "BYTES=0-9", total: 1000) == .partial(0...9), "the unit is case-insensitive")
        #expect(ByteRange(header: "bytes=99999999999999999999-", total: 1000) == .unsatisfiable)
        #expect(ByteRange(header: "bytes=0-18446744073709551615", total: 1000) == .partial(0...999))
        #expect(ByteRange(header: "bytes=-99999999999999999999", total: 1000) == .partial(0...999))
        #expect(ByteRange(header: "bytes=990-5000", total: 1000) == .partial(990...999), "clamped to the end")
        #expect(ByteRange(header: "bytes=-5000", total: 1000) == .partial(0...999))
        #expect(ByteRange(header: "bytes=1000-", total: 1000) == .unsatisfiable)
        #expect(ByteRange(header: "bytes=-0", total: 1000) == .unsatisfiable)
        for ignored in [
            nil, "", "bytes=5-1", "bytes=0-1,5-9", "items=0-1", "bytes=a-b", "bytes=-", "bytes=1-2-3",
        ] {
            #expect(ByteRange(header: ignored, total: 1000) == .whole, "\(ignored ?? "nil")")
        }
    }

    @Test func aDownloadResumesWithRangeAndIfRange() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2)) { coordinator in
            let client = try await coordinator.register("flaky-link")
            let whole = try await coordinator.request("GET", "/v1/models/current", token: client.token)
            #expect(whole.status == 200 && whole.header("accept-ranges") == "bytes")
            let etag = try #require(whole.header("etag"))
            let total = whole.body.count

            // The link broke after 100 bytes: ask for the rest, only if it is still the same version.
            let first = try await coordinator.request(
                "GET", "/v1/models/current", token: client.token, headers: [("Range", "bytes=0-99")])
            #expect(first.status == 206 && first.body.count == 100)
            #expect(first.header("content-range") == "bytes 0-99/\(total)")
            let rest = try await coordinator.request(
                "GET", "/v1/models/current", token: client.token,
                headers: [("Range", "bytes=100-"), ("If-Range", etag)])
            #expect(rest.status == 206 && rest.header("content-range") == "bytes 100-\(total - 1)/\(total)")
            let joined = first.body + rest.body
            #expect(joined == whole.body)
            #expect("\"" + CheckpointStore.sha256Hex(joined) + "\"" == etag, "the resumed bytes hash to the ETag")

            // Another version's ETag: the whole model, never a range of it spliced onto the wrong bytes.
            let stale = try await coordinator.request(
                "GET", "/v1/models/current", token: client.token,
                headers: [("Range", "bytes=100-"), ("If-Range", "\"0000\"")])
            #expect(stale.status == 200 && stale.body == whole.body)

            let beyond = try await coordinator.request(
                "GET", "/v1/models/current", token: client.token, headers: [("Range", "bytes=\(total)-")])
            #expect(beyond.status == 416 && beyond.header("content-range") == "bytes */\(total)")
            #expect(beyond.errorCode == "range_not_satisfiable")
        }
    }
}
