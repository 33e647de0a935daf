#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where differential-privacy noise comes from: the system's cryptographic random source in production, or a
/// seeded generator so a test can reproduce a draw.
public enum NoiseGenerator: RandomNumberGenerator, Sendable {
    case system
    case seeded(SeededRandomNumberGenerator)

    public init(seed: UInt64?) { self = seed.map { .seeded(SeededRandomNumberGenerator(seed: $0)) } ?? .system }

    public mutating func next() -> UInt64 {
        switch self {
        case .system:
            var system = SystemRandomNumberGenerator()
            return system.next()
        case .seeded(var generator):
            let value = generator.next()
            self = .seeded(generator)
            return value
        }
    }

    /// Adds independent N(0, standardDeviation²) draws to every element (Box–Muller, two draws per pair of
    /// uniforms).
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

    private mutating func standardNormalPair() -> (Double, Double) {
        // Uniforms in (0, 1): 53 random bits, offset by half a step so log never sees 0.
        let u1 = (Double(next() >> 11) + 0.5) * 0x1p-53
        let u2 = (Double(next() >> 11) + 0.5) * 0x1p-53
        let radius = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return (radius * cos(angle), radius * sin(angle))
    }
}
