@testable import FederationCore
import Foundation
import Testing

/// The noise source: ChaCha20 as RFC 8439 specifies it, and Gaussian draws (`NoiseGenerator`) with the asked
/// spread.
@Suite struct ChaCha20GeneratorTests {
    @Test func theBlockFunctionMatchesRFC8439() {
        // RFC 8439, section 2.3.2: key 00 01 … 1f, block count 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00.
        var key: [UInt32] = []
        for word in 0..<8 {
            var value: UInt32 = 0
            for byte in 0..<4 { value |= UInt32(4 * word + byte) << UInt32(8 * byte) }
            key.append(value)
        }
        // The block with counter 1 is lane 0 of the four computed from counter 1 (the counter's high word is the
        // RFC nonce's first word, which a 64-bit counter shares).
        let words = ChaCha20Generator.chaCha20Blocks(
            key: key, counter: 1 | UInt64(0x0900_0000) << 32, nonce: (0x4a00_0000, 0))
        let block = words.map { $0[0] }
        #expect(
            block == [
                0xe4e7_f110, 0x1559_3bd1, 0x1fdd_0f50, 0xc471_20a3, 0xc7f4_d1c7, 0x0368_c033, 0x9aaa_2204, 0x4e6c_d4c3,
                0x4664_82d2, 0x09aa_9f07, 0x05d7_c214, 0xa202_8bd9, 0xd19c_12b5, 0xb94e_16de, 0xe883_d0cb, 0x4e3c_50a2,
            ])
    }

    /// Lane k of the four computed together is the block with counter + k, whatever the counter (the 64-bit
    /// counter's carry into its high word included).
    @Test func theFourLanesAreConsecutiveBlocks() {
        let key: [UInt32] = (0..<8).map { UInt32($0) &* 0x9E37_79B9 }
        for counter: UInt64 in [41, 0xFFFF_FFFE] {
            let four = ChaCha20Generator.chaCha20Blocks(key: key, counter: counter, nonce: (0, 0))
            for lane in 0..<4 {
                let single = ChaCha20Generator.chaCha20Blocks(key: key, counter: counter + UInt64(lane), nonce: (0, 0))
                #expect(four.map { $0[lane] } == single.map { $0[0] }, "counter \(counter), lane \(lane)")
            }
        }
    }

    @Test func systemDrawsAreGaussianAndDiffer() {
        var generator = NoiseGenerator.system
        var values = [Double](repeating: 1, count: 200_001)
        generator.addGaussianNoise(to: &values, standardDeviation: 3)
        let mean = values.reduce(0, +) / Double(values.count)
        let deviation = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        #expect(abs(mean - 1) < 0.05 && abs(deviation - 3) < 0.05, "mean \(mean), deviation \(deviation)")
        let within = values.filter { abs($0 - 1) <= 3 }.count
        #expect(abs(Double(within) / Double(values.count) - 0.6827) < 0.005, "one σ holds 68.27 %")
        var other = NoiseGenerator.system
        #expect((0..<4).map { _ in generator.next() } != (0..<4).map { _ in other.next() }, "each is keyed afresh")
    }
}
