import DemoFederation
import FederationCore
import Testing

/// The digits demo under attack: 10 sites, 3 of them malicious, the regression guard off so only the
/// aggregator stands between the attack and the model. Sites hold near-IID shares (α = 10): the robust
/// aggregators' guarantees assume honest updates that resemble each other (README: "Under attack" has the
/// strongly non-IID table too, where the median and the trimmed mean give way to the sign flip).
extension DemoRuns {
    @Suite struct AttackTests {
        static let robust: [(String, [String: String])] = [
            ("fedmedian", [:]), ("fedtrimmedavg", ["beta": "0.3"]),
            ("krum", ["num_malicious_clients": "3", "num_clients_to_keep": "7"]),
        ]

        static func accuracy(_ strategy: String, _ options: [String: String], attack: DemoAttack?) async throws
            -> Double
        {
            let (summary, _) = try await DemoRuns.LocalFederationDemoTests.runDemo {
                $0.clients = 10
                $0.rounds = 15
                $0.alpha = 10
                $0.seed = 7
                $0.guardMaxRegression = nil
                $0.strategy = try! AggregationStrategy(name: strategy, options: options)
                if let attack {
                    $0.maliciousRate = 0.3
                    $0.attack = attack
                }
            }
            return summary.finalAccuracy
        }

        @Test func theSignFlipBreaksFedAvgAndNotTheRobustAggregators() async throws {
            let clean = try await Self.accuracy("fedavg", [:], attack: nil)
            let attacked = try await Self.accuracy("fedavg", [:], attack: .signFlip)
            #expect(clean > 0.85, "the clean federation learns: \(clean)")
            #expect(attacked < clean - 0.2, "FedAvg under a ×10 sign flip from 3 of 10 sites: \(attacked)")
            for (name, options) in Self.robust {
                let robust = try await Self.accuracy(name, options, attack: .signFlip)
                #expect(robust >= clean - 0.05, "\(name) under the sign flip: \(robust) against a clean \(clean)")
            }
        }

        @Test(arguments: [DemoAttack.gaussianNoise, .littleIsEnough])
        func theRobustAggregatorsStayWithinFivePointsOfTheCleanRun(attack: DemoAttack) async throws {
            let clean = try await Self.accuracy("fedavg", [:], attack: nil)
            for (name, options) in Self.robust {
                let attacked = try await Self.accuracy(name, options, attack: attack)
                #expect(
                    attacked >= clean - 0.05, "\(name) under \(attack.rawValue): \(attacked) against a clean \(clean)")
            }
        }

        @Test func maliciousSitesAreChosenBySeedAndRounded() {
            var options = DemoOptions()
            options.clients = 10
            options.maliciousRate = 0.3
            let chosen = options.maliciousSites
            #expect(chosen.count == 3 && Set(chosen).count == 3 && chosen.allSatisfy { (0..<10).contains($0) })
            #expect(options.maliciousSites == chosen, "the same seed picks the same sites")
            options.maliciousRate = 0.04
            #expect(options.maliciousSites.isEmpty, "0.4 of a site rounds to none")
        }

        @Test func aLittleIsEnoughUsesBaruchsZ() {
            // n = 10, f = 3: s = ⌊10/2 + 1⌋ − 3 = 3, z = Φ⁻¹(7/10) ≈ 0.5244.
            let model = ModelWeights(["w": Tensor(shape: [2], values: [0, 0])])
            let pool = [
                ModelWeights(["w": Tensor(shape: [2], values: [1, 2])]),
                ModelWeights(["w": Tensor(shape: [2], values: [3, 2])]),
            ]
            var generator = SeededRandomNumberGenerator(seed: 1)
            let sent = DemoAttack.littleIsEnough.corrupt(
                model: model, trained: pool[0], pooled: pool, sites: 10, malicious: 3, using: &generator)
            let values = sent["w"]!.doubleValues
            // Coordinate 0: μ = 2, σ = 1 → 2 − 0.5244; coordinate 1: σ = 0 → 2.
            #expect(abs(values[0] - (2 - 0.524_400_5)) < 1e-5 && values[1] == 2, "\(values)")
        }
    }
}
