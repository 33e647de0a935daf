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

    /// The `METHOD /path` pairs the document describes, sorted, read from its `paths` section (two-space
    /// indented paths, four-space indented methods, as the document is written).
    public static func operations() throws -> [String] {
        var operations: [String] = []
        var path: String?
        var inPaths = false
        for line in String(decoding: try bytes(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
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
