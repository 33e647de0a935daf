import FederationCore
import Testing

/// A client controls the JSON in a fit result's safetensors header. Parsing must stay linear in its size: a
/// string alternating plain runs and escapes (`"ab\nab\n…"`) once took time quadratic in its length, so one
/// 1.4 MB upload held the coordinator for 50 s. Measured as the cost of 16× the input against 1×, side by side,
/// taking the fastest of five runs of each (the estimate least disturbed by a loaded machine): linear work gives
/// about 16, quadratic about 256; the bound sits between with room for noise either way.
@Suite struct JSONParserCostTests {
    static func document(repeats: Int) -> [UInt8] {
        Array(#"{"k":""#.utf8) + Array(String(repeating: #"ab\n"#, count: repeats).utf8) + Array(#""}"#.utf8)
    }

    static func fastestSeconds(_ bytes: [UInt8]) throws -> Double {
        var times: [Double] = []
        for _ in 0..<5 {
            let start = ContinuousClock.now
            _ = try JSONParser.parse(bytes)
            times.append(start.duration(to: .now).seconds)
        }
        return times.min()!
    }

    @Test func alternatingEscapesParseInLinearTime() throws {
        let small = Self.document(repeats: 50_000)  // 150 KB
        let large = Self.document(repeats: 800_000)  // 2.4 MB
        #expect(try JSONParser.parse(large).objectMembers?.first?.1.stringValue?.count == 2_400_000)
        let ratio = try Self.fastestSeconds(large) / max(try Self.fastestSeconds(small), 1e-4)
        print("json parse: 16x the input took \(ratio)x as long")
        #expect(ratio < 64, "16× the input took \(ratio)× as long: not linear")
    }
}
