/// A cryptographically secure generator: the ChaCha20 keystream (RFC 8439's block function, 20 rounds, a 64-bit
/// block counter, a zero nonce) under a 256-bit key from the system's random source, replaced every 2^20 blocks
/// (64 MiB of output).
///
/// `SystemRandomNumberGenerator` makes one system call per eight bytes; differential privacy's noise for a model
/// of P parameters draws about P uniforms, which that would make cost seconds per million parameters. This one
/// computes four blocks side by side in SIMD lanes.
public struct ChaCha20Generator: RandomNumberGenerator, Sendable {
    private var key: [UInt32] = []
    private var counter: UInt64 = 0
    private var block = [UInt64](repeating: 0, count: 32)
    private var position = 32

    public init() {}

    public mutating func next() -> UInt64 {
        if position == 32 { refill() }
        defer { position += 1 }
        return block[position]
    }

    private mutating func refill() {
        if key.isEmpty || counter >= 1 << 20 {
            var system = SystemRandomNumberGenerator()
            key = (0..<4).flatMap { _ -> [UInt32] in
                let word = system.next()
                return [UInt32(truncatingIfNeeded: word), UInt32(truncatingIfNeeded: word >> 32)]
            }
            counter = 0
        }
        let words = Self.chaCha20Blocks(key: key, counter: counter, nonce: (0, 0))
        counter += 4
        // Block k is lane k of the 16 words, in word order; two words make one UInt64.
        for lane in 0..<4 {
            for pair in 0..<8 {
                block[lane * 8 + pair] = UInt64(words[2 * pair][lane]) | UInt64(words[2 * pair + 1][lane]) << 32
            }
        }
        position = 0
    }

    /// Four consecutive ChaCha20 blocks (RFC 8439's block function: the constants, the key, the counter and
    /// nonce; ten double rounds of quarter rounds on columns then diagonals; the input added back), computed
    /// side by side: lane k of word w is word w of the block with counter `counter + k`. Returns the 16 words.
    /// The nonce words are `nonce`; the generator's counter is 64 bits (words 12 and 13) with a zero nonce.
    static func chaCha20Blocks(key: [UInt32], counter: UInt64, nonce: (UInt32, UInt32)) -> [SIMD4<UInt32>] {
        let counters = SIMD4<UInt64>(counter, counter &+ 1, counter &+ 2, counter &+ 3)
        var input = [SIMD4<UInt32>](repeating: .zero, count: 16)
        input[0] = SIMD4(repeating: 0x6170_7865)
        input[1] = SIMD4(repeating: 0x3320_646e)
        input[2] = SIMD4(repeating: 0x7962_2d32)
        input[3] = SIMD4(repeating: 0x6b20_6574)
        for word in 0..<8 { input[4 + word] = SIMD4(repeating: key[word]) }
        input[12] = SIMD4(truncatingIfNeeded: counters)
        input[13] = SIMD4(truncatingIfNeeded: counters &>> 32)
        input[14] = SIMD4(repeating: nonce.0)
        input[15] = SIMD4(repeating: nonce.1)
        var x = input
        x.withUnsafeMutableBufferPointer { x in
            for _ in 0..<10 {
                quarterRound(&x, 0, 4, 8, 12)
                quarterRound(&x, 1, 5, 9, 13)
                quarterRound(&x, 2, 6, 10, 14)
                quarterRound(&x, 3, 7, 11, 15)
                quarterRound(&x, 0, 5, 10, 15)
                quarterRound(&x, 1, 6, 11, 12)
                quarterRound(&x, 2, 7, 8, 13)
                quarterRound(&x, 3, 4, 9, 14)
            }
        }
        for word in 0..<16 { x[word] &+= input[word] }
        return x
    }

    @inline(__always)
    private static func quarterRound(
        _ x: inout UnsafeMutableBufferPointer<SIMD4<UInt32>>, _ a: Int, _ b: Int, _ c: Int, _ d: Int
    ) {
        x[a] &+= x[b]
        x[d] ^= x[a]
        x[d] = (x[d] &<< 16) | (x[d] &>> 16)
        x[c] &+= x[d]
        x[b] ^= x[c]
        x[b] = (x[b] &<< 12) | (x[b] &>> 20)
        x[a] &+= x[b]
        x[d] ^= x[a]
        x[d] = (x[d] &<< 8) | (x[d] &>> 24)
        x[c] &+= x[d]
        x[b] ^= x[c]
        x[b] = (x[b] &<< 7) | (x[b] &>> 25)
    }
}
