import Foundation

/// The OpenAPI 3 document of the whole HTTP API, shipped as a resource and served at `GET /v1/openapi.yaml`.
///
/// It is the contract: a test fails when the router and the document disagree about a route, and the fuzz
/// test checks every answer against it.
public enum APIDocument {
    /// The document's bytes (read once).
    public static func bytes() throws -> [UInt8] {
        try cached.get()
    }

    private static let cached: Result<[UInt8], any Error> = Result {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return Array(try Data(contentsOf: url))
    }
}
