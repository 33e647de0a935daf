#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where differential-privacy noise comes from, and its Gaussian draws: a `ChaCha20Generator` keyed from the
/// system in production, or a seeded generator so a test can reproduce a draw.
public struct NoiseGenerator: RandomNumberGenerator, Sendable {
    private var seeded: SeededRandomNumberGenerator?
    private var secure = ChaCha20Generator()

    /// The system-keyed ChaCha20 generator.
    public static var system: NoiseGenerator { NoiseGenerator(seed: nil) }

    /// A generator seeded with `seed` (tests), or the system-keyed one when it is nil.
    public init(seed: UInt64?) { seeded = seed.map { SeededRandomNumberGenerator(seed: $0) } }

    public mutating func next() -> UInt64 {
        if seeded != nil { return seeded!.next() }
        return secure.next()
    }

    /// Adds independent N(0, standardDeviation²) draws to every element (Marsaglia's polar method, two draws per
    /// accepted pair of uniforms).
    public mutating func addGaussianNoise(to values: inout [Double], standardDeviation: Double) {
        guard standardDeviation > 0 else { return }
        var index = values.startIndex
        while index < values.endIndex {
            let (first, second) = standardNormalPair()
            values[index] += first * standardDeviation
            index += 1
            if index < values.endIndex {
                values[index] += second * standardDeviation
                index += 1
            }
        }
    }

    /// One N(0, 1) draw.
    public mutating func standardNormal() -> Double { standardNormalPair().0 }

    /// Two independent N(0, 1) draws by Marsaglia's polar method (no trigonometry; a pair of uniforms is
    /// rejected about 21 % of the time).
    private mutating func standardNormalPair() -> (Double, Double) {
        while true {
            let u = Double(next() >> 11) * 0x1p-52 - 1
            let v = Double(next() >> 11) * 0x1p-52 - 1
            let s = u * u + v * v
            guard s < 1, s > 0 else { continue }
            let factor = (-2 * log(s) / s).squareRoot()
            return (u * factor, v * factor)
        }
    }
}
