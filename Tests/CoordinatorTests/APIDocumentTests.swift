import Coordinator
import RondoTestSupport
import Testing

/// The OpenAPI document and the router describe the same API.
@Suite struct APIDocumentTests {
    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let routes = Set(coordinator.server.routes)
            let documented = Set(try Self.operations())
            #expect(routes.count > 20, "the router lists its routes: \(routes)")
            #expect(routes.subtracting(documented).isEmpty, "routes missing from openapi.yaml")
            #expect(documented.subtracting(routes).isEmpty, "documented operations the router does not serve")

            let served = try await coordinator.request("GET", "/v1/openapi.yaml")
            let document = try APIDocument.bytes()
            #expect(served.status == 200 && served.body == document)
            #expect(served.header("Content-Type") == "application/yaml")
        }
    }

    /// The `METHOD /path` pairs the document describes, sorted, read from its `paths` section (two-space
    /// indented paths, four-space indented methods, as the document is written).
    static func operations() throws -> [String] {
        var operations: [String] = []
        var path: String?
        var inPaths = false
        for line in String(decoding: try APIDocument.bytes(), as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: true)
        {
            if !line.hasPrefix(" ") {
                inPaths = line == "paths:"
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())  // "  /v1/x:" → "/v1/x"
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = line.dropFirst(4).prefix { $0 != ":" }
                if ["get", "post", "put", "delete", "patch"].contains(key) {
                    operations.append("\(key.uppercased()) \(path)")
                }
            }
        }
        return operations.sorted()
    }
}
