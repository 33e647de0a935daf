import FederationCore
import Foundation

/// Splits a labelled data set across clients with label skew drawn from Dirichlet(α) — the usual way FL
/// papers simulate non-IID clients (small α: each client sees few classes; large α: close to IID).
///
/// For each class, client shares are drawn from Dir(α) and that class's examples dealt out accordingly.
/// Draws are repeated until every client holds at least `minimumPerClient` examples.
public struct DirichletPartitioner: Sendable {
    public var alpha: Double
    public var minimumPerClient: Int

    public init(alpha: Double, minimumPerClient: Int = 10) {
        precondition(alpha > 0, "alpha must be positive")
        self.alpha = alpha
        self.minimumPerClient = minimumPerClient
    }

    /// Index lists, one per client, covering `labels` exactly once.
    public func partition(
        labels: [Int], clients: Int, using generator: inout SeededRandomNumberGenerator
    ) -> [[Int]] {
        precondition(clients >= 1)
        precondition(labels.count >= clients * minimumPerClient, "not enough examples for \(clients) clients")
        let classes = Set(labels).sorted()
        for _ in 0..<1000 {
            var parts = [[Int]](repeating: [], count: clients)
            for label in classes {
                var members = labels.indices.filter { labels[$0] == label }
                members.shuffle(using: &generator)
                let shares = dirichlet(count: clients, using: &generator)
                var start = 0
                var cumulative = 0.0
                for client in 0..<clients {
                    cumulative += shares[client]
                    let end =
                        client == clients - 1
                        ? members.count : min(members.count, Int((cumulative * Double(members.count)).rounded()))
                    parts[client] += members[start..<max(start, end)]
                    start = max(start, end)
                }
            }
            if parts.allSatisfy({ $0.count >= minimumPerClient }) { return parts.map { $0.sorted() } }
        }
        preconditionFailure("could not give every client \(minimumPerClient) examples; raise alpha")
    }

    private func dirichlet(count: Int, using generator: inout SeededRandomNumberGenerator) -> [Double] {
        let draws = (0..<count).map { _ in Self.gamma(shape: alpha, using: &generator) }
        let total = draws.reduce(0, +)
        return total > 0 ? draws.map { $0 / total } : [Double](repeating: 1 / Double(count), count: count)
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 via the boost Gamma(a) = Gamma(a+1)·U^(1/a).
    static func gamma(shape: Double, using generator: inout SeededRandomNumberGenerator) -> Double {
        if shape < 1 {
            let u = Double.random(in: Double.ulpOfOne..<1, using: &generator)
            return gamma(shape: shape + 1, using: &generator) * pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0
            var v = 0.0
            repeat {
                x = standardNormal(using: &generator)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = Double.random(in: Double.ulpOfOne..<1, using: &generator)
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    static func standardNormal(using generator: inout SeededRandomNumberGenerator) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &generator)
        let u2 = Double.random(in: 0..<1, using: &generator)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}
