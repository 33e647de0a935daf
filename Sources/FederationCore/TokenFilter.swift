/// A fixed-size Bloom filter of token hashes: answers "certainly not a token the store holds" without asking
/// the store, so a request with a made-up bearer token costs no database read.
///
/// Keys are lower-case hex SHA-256 digests (uniform bits), so the filter's k bit positions are taken straight
/// from the digest's first k × 8 hex digits. Members are only added (a departed client's hash stays, costing a
/// lookup that answers "unknown"). With the defaults (2^23 bits = 1 MiB, k = 3) the false-positive rate is
/// about 1 in 180,000 at 50,000 tokens and 1 in 37 at a million.
public struct TokenFilter: Sendable, Equatable {
    private var words: [UInt64]
    private let bitMask: UInt64
    /// Bit positions per key.
    private static let hashes = 3

    /// An empty filter of `bitCount` bits.
    /// - Precondition: `bitCount` is a power of two, at least 64.
    public init(bitCount: Int = 1 << 23) {
        precondition(bitCount >= 64 && bitCount & (bitCount - 1) == 0, "bit count must be a power of two ≥ 64")
        words = [UInt64](repeating: 0, count: bitCount / 64)
        bitMask = UInt64(bitCount - 1)
    }

    /// Adds a token hash given as its hex digits (ASCII bytes).
    public mutating func insert(hexDigest: some Collection<UInt8>) {
        guard let positions = positions(hexDigest) else { return }
        for position in positions { words[Int(position >> 6)] |= 1 << (position & 63) }
    }

    /// Adds a token hash.
    public mutating func insert(tokenSHA256: String) { insert(hexDigest: tokenSHA256.utf8) }

    /// False only when the hash was certainly never added. A key that is not hex is always "maybe".
    public func mayContain(tokenSHA256: String) -> Bool {
        guard let positions = positions(tokenSHA256.utf8) else { return true }
        return positions.allSatisfy { words[Int($0 >> 6)] & (1 << ($0 & 63)) != 0 }
    }

    private func positions(_ hex: some Collection<UInt8>) -> [UInt64]? {
        var positions: [UInt64] = []
        positions.reserveCapacity(Self.hashes)
        var value: UInt64 = 0
        var digits = 0
        for byte in hex {
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt64(nibble)
            digits += 1
            if digits == 8 {
                positions.append(value & bitMask)
                if positions.count == Self.hashes { return positions }
                (value, digits) = (0, 0)
            }
        }
        return nil
    }
}
