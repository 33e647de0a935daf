import FederationCore
import Testing

@Suite struct TokenFilterTests {
    /// Hex digests standing in for SHA-256 token hashes (uniform bits, like the real ones).
    static func digests(_ count: Int, seed: UInt64) -> [String] {
        var generator = SeededRandomNumberGenerator(seed: seed)
        return (0..<count).map { _ in
            (0..<4).map { _ in
                let word = String(UInt64.random(in: .min ... .max, using: &generator), radix: 16)
                return String(repeating: "0", count: 16 - word.count) + word
            }.joined()
        }
    }

    @Test func everyAddedHashIsFoundAndOthersAlmostNever() {
        var filter = TokenFilter()
        let added = Self.digests(5_000, seed: 1)
        for digest in added { filter.insert(tokenSHA256: digest) }
        #expect(added.allSatisfy { filter.mayContain(tokenSHA256: $0) }, "no false negatives")
        let strangers = Self.digests(20_000, seed: 2)
        // Expected false positives at 5,000 members: 20,000 × (1 − e^(−3·5000/2^23))³ ≈ 0.0001.
        #expect(strangers.filter { filter.mayContain(tokenSHA256: $0) }.isEmpty)
    }

    @Test func theFalsePositiveRateFollowsTheBloomBound() {
        var filter = TokenFilter(bitCount: 4_096)
        for digest in Self.digests(1_000, seed: 3) { filter.insert(tokenSHA256: digest) }
        let strangers = Self.digests(20_000, seed: 4)
        let rate = Double(strangers.count { filter.mayContain(tokenSHA256: $0) }) / Double(strangers.count)
        // (1 − e^(−3·1000/4096))³ ≈ 0.147 for a filter of 4,096 bits with 1,000 members.
        #expect(rate > 0.11 && rate < 0.19, "false-positive rate \(rate)")
    }

    @Test func uppercaseDigestsMatchAndNonHexKeysAreAlwaysMaybe() {
        var filter = TokenFilter(bitCount: 1 << 16)
        let digest = Self.digests(1, seed: 5)[0]
        filter.insert(hexDigest: Array(digest.uppercased().utf8))
        #expect(filter.mayContain(tokenSHA256: digest))
        #expect(filter.mayContain(tokenSHA256: "not hex at all, so never ruled out"))
        #expect(filter.mayContain(tokenSHA256: "abc"), "too short to rule out")
    }
}
