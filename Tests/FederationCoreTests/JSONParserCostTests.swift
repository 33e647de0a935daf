import FederationCore
import Testing

/// A client controls the JSON in a fit result's safetensors header. Parsing must stay linear in its size: a
/// string alternating plain runs and escapes (`"ab\nab\n…"`) once took time quadratic in its length, so one
/// 1.4 MB upload held the coordinator for 50 s. Measured as the cost of 4× the input against 1×, side by side,
/// so a slow or loaded machine does not change the verdict: linear work gives about 4, quadratic about 16.
@Suite struct JSONParserCostTests {
    static func document(repeats: Int) -> [UInt8] {
        Array(#"{"k":""#.utf8) + Array(String(repeating: #"ab\n"#, count: repeats).utf8) + Array(#""}"#.utf8)
    }

    static func medianSeconds(_ bytes: [UInt8]) throws -> Double {
        var times: [Double] = []
        for _ in 0..<3 {
            let start = ContinuousClock.now
            _ = try JSONParser.parse(bytes)
            times.append(start.duration(to: .now).seconds)
        }
        return times.sorted()[1]
    }

    @Test func alternatingEscapesParseInLinearTime() throws {
        let small = Self.document(repeats: 100_000)  // 0.3 MB
        let large = Self.document(repeats: 400_000)  // 1.2 MB
        #expect(try JSONParser.parse(large).objectMembers?.first?.1.stringValue?.count == 1_200_000)
        let ratio = try Self.medianSeconds(large) / max(try Self.medianSeconds(small), 1e-4)
        print("json parse: 4x the input took \(ratio)x as long")
        #expect(ratio < 8, "4× the input took \(ratio)× as long: not linear")
    }
}
