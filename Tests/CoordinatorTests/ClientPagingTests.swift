@testable import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// `/v1/clients` answers a page at a time: pages cover every client once, and bad paging parameters are 400.
@Suite struct ClientPagingTests {
    struct Page: Decodable {
        struct Client: Decodable { var client_id: String }
        var clients: [Client]
        var total: Int
        var connected: Int
        var next_offset: Int?
    }

    @Test func pagesCoverEveryClientOnceAndBadParametersAre400() async throws {
        var configuration = RunningCoordinator.configuration(clients: 100)
        configuration.rounds.livenessTimeout = .seconds(600)  // all stay connected however slowly the test runs
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            var registered: Set<String> = []
            for index in 0..<25 { registered.insert(try await coordinator.register("paged-\(index)").id) }
            var seen: [String] = []
            var offset: Int? = 0
            var pages = 0
            while let current = offset {
                let response = try await coordinator.request(
                    "GET", "/v1/clients?limit=10&offset=\(current)", token: RunningCoordinator.viewerToken)
                #expect(response.status == 200, "\(response.text)")
                let page = try JSONDecoder().decode(Page.self, from: Data(response.body))
                #expect(page.total == 25 && page.connected == 25)
                #expect(page.clients.count == min(10, 25 - current))
                seen += page.clients.map(\.client_id)
                offset = page.next_offset
                pages += 1
            }
            #expect(pages == 3)
            #expect(seen.count == 25 && Set(seen) == registered, "every client once")
            let beyond = try await coordinator.request(
                "GET", "/v1/clients?offset=500", token: RunningCoordinator.viewerToken)
            let empty = try JSONDecoder().decode(Page.self, from: Data(beyond.body))
            #expect(empty.clients.isEmpty && empty.total == 25 && empty.next_offset == nil)
            for query in ["limit=0", "limit=10001", "limit=x", "offset=-1", "offset=1e3"] {
                let refused = try await coordinator.request(
                    "GET", "/v1/clients?\(query)", token: RunningCoordinator.viewerToken)
                #expect(refused.status == 400 && refused.errorCode == "invalid_parameter", "\(query): \(refused.text)")
            }
        }
    }
}
