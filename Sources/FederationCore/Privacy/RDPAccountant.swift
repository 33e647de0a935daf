#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rényi-DP accounting for the sampled Gaussian mechanism (Mironov, Talwar and Zhang, "Rényi Differential
/// Privacy of the Sampled Gaussian Mechanism", 2019), converted to (ε, δ) by Proposition 12 of Canonne, Kamath
/// and Steinke (2020), as Google's `dp_accounting` and TensorFlow Privacy do.
///
/// A DP-FedAvg round is one sampled Gaussian mechanism: each client of a population is in the cohort with
/// probability `q` (the sampling rate), and the sum of clipped updates gets Gaussian noise of standard deviation
/// z·C (z the noise multiplier). RDP composes by addition at each order, so the accountant keeps one running sum
/// per order and rounds with different q or z compose exactly.
///
/// Invariant: `rdp[i]` is the total RDP at `orders[i]` of every round composed so far (never negative).
public struct RDPAccountant: Sendable, Equatable {
    /// The orders α at which RDP is tracked: the default set of `dp_accounting` 0.6 (1.1 to 10.9 by 0.1, 11 to
    /// 63, 128, 256, 512 and 1024), so the ε found is the same minimum over the same orders.
    public static let orders: [Double] =
        (1..<100).map { 1 + Double($0) / 10 } + (11..<64).map(Double.init) + [128, 256, 512, 1024]

    /// Total RDP per order, in the order of `orders`.
    public private(set) var rdp: [Double]
    /// Rounds composed so far.
    public private(set) var rounds = 0

    public init() { rdp = [Double](repeating: 0, count: Self.orders.count) }

    /// Adds `rounds` rounds of the sampled Gaussian mechanism with sampling rate `samplingRate` in [0, 1] and
    /// noise multiplier `noiseMultiplier` ≥ 0 (0 means no noise: ε becomes infinite).
    public mutating func compose(samplingRate: Double, noiseMultiplier: Double, rounds count: Int = 1) {
        precondition(count >= 0)
        let step = Self.rdp(samplingRate: samplingRate, noiseMultiplier: noiseMultiplier)
        for index in rdp.indices { rdp[index] += step[index] * Double(count) }
        rounds += count
    }

    /// The accountant after `rounds` more rounds, leaving this one as it is (what a budget check projects).
    public func composing(samplingRate: Double, noiseMultiplier: Double, rounds count: Int = 1) -> RDPAccountant {
        var next = self
        next.compose(samplingRate: samplingRate, noiseMultiplier: noiseMultiplier, rounds: count)
        return next
    }

    /// The smallest ε over the tracked orders such that everything composed so far is (ε, δ)-DP; 0 before any
    /// round, +∞ when a round had no noise.
    public func epsilon(delta: Double) -> Double {
        precondition(delta > 0 && delta < 1, "delta must be in (0, 1)")
        var best = Double.infinity
        for (order, value) in zip(Self.orders, rdp) {
            best = min(best, Self.epsilon(order: order, rdp: value, delta: delta))
        }
        return best
    }

    /// (ε, δ) from the RDP `rdp` at order `order` (CKS 2020, Proposition 12).
    static func epsilon(order: Double, rdp: Double, delta: Double) -> Double {
        guard rdp.isFinite else { return .infinity }
        // When the divergence is this small, δ alone covers it (δ ≥ √(1 − e^−KL)).
        if delta * delta + expm1(-rdp) > 0 { return 0 }
        guard order > 1.01 else { return .infinity }
        return max(0, rdp + log1p(-1 / order) - log(delta * order) / (order - 1))
    }

    /// The RDP of one round at every tracked order.
    static func rdp(samplingRate q: Double, noiseMultiplier sigma: Double) -> [Double] {
        precondition(q >= 0 && q <= 1, "the sampling rate must be in [0, 1]")
        precondition(sigma >= 0 && sigma.isFinite, "the noise multiplier must be finite and not negative")
        return orders.map { rdp(order: $0, samplingRate: q, noiseMultiplier: sigma) }
    }

    /// The RDP of the sampled Gaussian mechanism at order α.
    static func rdp(order alpha: Double, samplingRate q: Double, noiseMultiplier sigma: Double) -> Double {
        if q == 0 { return 0 }
        // σ² underflowing to 0 is no noise at all (and would turn the series into 0/0).
        if sigma * sigma == 0 { return .infinity }
        // Without sampling it is the Gaussian mechanism: α / (2σ²).
        if q == 1 { return alpha / (2 * sigma * sigma) }
        let logA =
            alpha == alpha.rounded()
            ? logAIntegral(alpha: Int(alpha), q: q, sigma: sigma)
            : logAFractional(alpha: alpha, q: q, sigma: sigma)
        // The series did not converge (or lost itself in NaN): leave the order out.
        guard let logA, !logA.isNaN else { return .infinity }
        return max(0, logA / (alpha - 1))
    }

    /// log A_α for integer α: the binomial expansion of E[(p(x)/p₀(x))^α] under the mixture (Mironov et al.,
    /// Section 3.2), summed in log space.
    static func logAIntegral(alpha: Int, q: Double, sigma: Double) -> Double? {
        var total = -Double.infinity
        let logQ = log(q)
        let log1MinusQ = log1p(-q)
        for k in 0...alpha {
            let term =
                logBinomial(Double(alpha), k) + Double(k) * logQ + Double(alpha - k) * log1MinusQ
                + Double(k * k - k) / (2 * sigma * sigma)
            total = logAdd(total, term)
        }
        return total
    }

    /// log A_α for fractional α: the two-sided series of Mironov et al., Section 3.3, split at
    /// z₀ = σ² log(1/q − 1) + ½. Terms are added by their magnitude, as `dp_accounting` 0.6 does: the signed
    /// series is the exact A_α, the sum of magnitudes an upper bound on it, so ε errs on the side of more
    /// privacy spent. The series stops once both terms shrink and lie 30 nats below the running total; nil when
    /// 1,000 terms do not get there (that order is then left out).
    static func logAFractional(alpha: Double, q: Double, sigma: Double) -> Double? {
        var upper = -Double.infinity  // the part over (−∞, z₀]
        var lower = -Double.infinity  // the part over [z₀, ∞)
        let z0 = sigma * sigma * log(1 / q - 1) + 0.5
        let logQ = log(q)
        let log1MinusQ = log1p(-q)
        var logCoefficient = 0.0  // log |C(α, i)|
        var last = (-Double.infinity, -Double.infinity)
        for i in 0..<1000 {
            if i > 0 { logCoefficient += log(abs(alpha - Double(i) + 1)) - log(Double(i)) }
            let j = alpha - Double(i)
            let index = Double(i)
            let logT0 = logCoefficient + index * logQ + j * log1MinusQ
            let logT1 = logCoefficient + j * logQ + index * log1MinusQ
            let logE0 = log(0.5) + logErfc((index - z0) / (2.0.squareRoot() * sigma))
            let logE1 = log(0.5) + logErfc((z0 - j) / (2.0.squareRoot() * sigma))
            let logS0 = logT0 + (index * index - index) / (2 * sigma * sigma) + logE0
            let logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1
            upper = logAdd(upper, logS0)
            lower = logAdd(lower, logS1)
            let total = logAdd(upper, lower)
            if logS0 < last.0, logS1 < last.1, max(logS0, logS1) < total - 30 { return total }
            last = (logS0, logS1)
        }
        return nil
    }

    /// log C(n, k) for real n ≥ k.
    static func logBinomial(_ n: Double, _ k: Int) -> Double {
        lgamma(n + 1) - lgamma(Double(k) + 1) - lgamma(n - Double(k) + 1)
    }

    /// log(e^a + e^b).
    static func logAdd(_ a: Double, _ b: Double) -> Double {
        let (high, low) = a >= b ? (a, b) : (b, a)
        if high == -.infinity { return low }
        return high + log1p(exp(low - high))
    }

    /// log(erfc(x)), kept finite far in the tail where erfc underflows: beyond x = 25 it uses the asymptotic
    /// series erfc(x) ≈ e^(−x²) / (x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶)).
    static func logErfc(_ x: Double) -> Double {
        guard x > 25 else { return log(erfc(x)) }
        let inverseSquare = 1 / (x * x)
        let series =
            1 - inverseSquare / 2 + 3 * inverseSquare * inverseSquare / 4
            - 15 * inverseSquare * inverseSquare * inverseSquare / 8
        return -x * x - log(x) - 0.5 * log(Double.pi) + log(series)
    }
}
