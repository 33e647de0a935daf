import Coordinator
import RondoTestSupport
import Testing

/// The OpenAPI document and the router describe the same API.
@Suite struct APIDocumentTests {
    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let routes = Set(coordinator.server.routes)
            let documented = Set(try APIDocument.operations())
            #expect(routes.count > 20, "the router lists its routes: \(routes)")
            #expect(routes.subtracting(documented).isEmpty, "routes missing from openapi.yaml")
            #expect(documented.subtracting(routes).isEmpty, "documented operations the router does not serve")

            let served = try await coordinator.request("GET", "/v1/openapi.yaml")
            let document = try APIDocument.bytes()
            #expect(served.status == 200 && served.body == document)
            #expect(served.header("Content-Type") == "application/yaml")
        }
    }
}
