@testable import FederationCore
import Foundation
import Testing

/// DP-FedAvg in the round engine: clipping to the privacy clip norm, unit weights, Gaussian noise of z·C/n on
/// the average, adaptive clipping's geometric update, the spend handed to the store, and the budget refusal.
@Suite struct DifferentialPrivacyRoundTests {
    typealias Machine = RoundStateMachine<TestInstant>

    static func model(_ values: [Float], version: Int = 1) -> GlobalModel {
        GlobalModel(
            version: version, sha256: "v\(version)",
            weights: ModelWeights(["w": Tensor(shape: [values.count], values: values)]))
    }

    static func seeded(_ privacy: DifferentialPrivacy, _ seed: UInt64) -> DifferentialPrivacy {
        var seeded = privacy
        seeded.noiseSeed = seed
        return seeded
    }

    /// `clients` clients, all selected every round; no evaluation (a stored candidate commits).
    static func machine(_ privacy: DifferentialPrivacy, clients: Int, size: Int = 1, ledger: [PrivacySpend] = [])
        -> (Machine, [ClientID])
    {
        var configuration = RoundConfiguration(
            selection: SelectionPolicy(
                fractionFit: 1, minFitClients: clients, minAvailableClients: clients, fractionEvaluate: 0),
            minFitResults: clients, fitTimeout: .seconds(10), evaluateTimeout: .seconds(10),
            livenessTimeout: .seconds(30))
        configuration.privacy = privacy
        var machine = Machine(
            configuration: configuration, model: model([Float](repeating: 0, count: size)), seed: 3,
            privacyLedger: ledger)
        let ids = (0..<clients).map { ClientID("c\($0)") }
        for id in ids { _ = machine.register(id, now: .zero) }
        return (machine, ids)
    }

    /// Runs the open round with one update per client (`values[i]` everywhere, `examples[i]` examples) and
    /// returns the stored aggregate and spend; the candidate is stored and committed.
    static func round(
        _ machine: inout Machine, _ ids: [ClientID], values: [Float], size: Int = 1, examples: [Int]? = nil
    ) throws -> (weights: ModelWeights, spend: PrivacySpend?) {
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        var last: [Machine.Action] = []
        for (index, task) in tasks.enumerated() {
            last = try machine.fitResult(
                task.id, client: ids[index],
                weights: ModelWeights([
                    "w": Tensor(shape: [size], values: [Float](repeating: values[index], count: size))
                ]),
                numExamples: examples?[index] ?? 10, metrics: [:], now: .zero)
        }
        guard case .storeCandidate(let round, _, let weights, _, let spend)? = last.last else {
            Issue.record("expected the aggregate, got \(last)")
            throw CancellationError()
        }
        let version = machine.model.version + 1
        _ = machine.candidateStored(
            round: round, candidate: GlobalModel(version: version, sha256: "v\(version)", weights: weights), now: .zero)
        _ = machine.committed(round: round, now: .zero)
        return (weights, spend)
    }

    @Test func updatesAreClippedAndWeighedTheSameWhateverTheirExampleCounts() throws {
        var (machine, ids) = Self.machine(
            DifferentialPrivacy(noiseMultiplier: 0, clipping: .fixed(norm: 1)), clients: 3)
        // Δ of 0.2 and 0.4 stay; 5 is clipped to 1. Unit weights: (0.2 + 0.4 + 1) / 3, not weighted by examples.
        let (weights, spend) = try Self.round(&machine, ids, values: [0.2, 0.4, 5], examples: [1, 1000, 7])
        #expect(abs(weights["w"]!.doubleValues[0] - 1.6 / 3) < 1e-6, "\(weights["w"]!)")
        #expect(
            spend
                == PrivacySpend(
                    round: 1, samplingRate: 1, noiseMultiplier: 0, clipNorm: 1, nextClipNorm: 1, results: 3,
                    unclipped: 2))
        #expect(machine.privacy?.accountant.rounds == 1)
        #expect(machine.privacy?.epsilon == .infinity, "no noise: no privacy")
    }

    @Test func theDenominatorIsTheCohortNotTheAnswers() throws {
        var (machine, ids) = Self.machine(
            DifferentialPrivacy(noiseMultiplier: 0, clipping: .fixed(norm: 1)), clients: 3)
        var configuration = machine.configuration
        configuration.minFitResults = 2
        machine = Machine(configuration: configuration, model: Self.model([0]), seed: 3)
        for id in ids { _ = machine.register(id, now: .zero) }
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        for (index, value) in [Float(0.3), 0.6].enumerated() {
            _ = try machine.fitResult(
                tasks[index].id, client: ids[index], weights: ModelWeights(["w": Tensor(shape: [1], values: [value])]),
                numExamples: 5, metrics: [:], now: .zero)
        }
        // The third selected client never answers: the round closes at its deadline.
        let actions = machine.tick(now: .seconds(11))
        guard case .storeCandidate(_, _, let weights, _, let spend)? = actions.last else {
            Issue.record("expected the aggregate, got \(actions)")
            return
        }
        #expect(abs(weights["w"]!.doubleValues[0] - 0.3) < 1e-6, "(0.3 + 0.6) / 3 selected, not / 2 answered")
        #expect(spend?.results == 2)
    }

    @Test func withAGoalTheDenominatorIsTheGoalNotTheOverSelection() throws {
        // Goal 2, over-selection 1.5: three clients are asked, the round takes the first two results.
        var configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionEvaluate: 0, goal: SelectionGoal(count: 2, overSelection: 1.5)),
            minFitResults: 2, fitTimeout: .seconds(60), livenessTimeout: .seconds(600))
        configuration.privacy = DifferentialPrivacy(noiseMultiplier: 0, clipping: .fixed(norm: 1))
        var machine = Machine(configuration: configuration, model: Self.model([0]), seed: 3)
        let ids = (0..<3).map { ClientID("g\($0)") }
        for id in ids { _ = machine.register(id, now: .zero) }
        let tasks = ids.compactMap { machine.takeTask(for: $0, now: .zero) }
        #expect(tasks.count == 3)
        var actions: [Machine.Action] = []
        for (index, value) in [Float(0.3), 0.6].enumerated() {
            actions = try machine.fitResult(
                tasks[index].id, client: tasks[index].client,
                weights: ModelWeights(["w": Tensor(shape: [1], values: [value])]), numExamples: 5, metrics: [:],
                now: .zero)
        }
        guard case .storeCandidate(_, _, let weights, _, _)? = actions.last else {
            Issue.record("expected the aggregate, got \(actions)")
            return
        }
        #expect(abs(weights["w"]!.doubleValues[0] - 0.45) < 1e-6, "(0.3 + 0.6) / the goal of 2, not / 3 asked")
    }

    @Test func integerTensorsKeepTheBaseModelsValues() throws {
        let base = GlobalModel(
            version: 1, sha256: "v1",
            weights: ModelWeights([
                "w": Tensor(shape: [2], values: [0, 0]),
                "steps": Tensor(shape: [1], dtype: .int64, littleEndianBytes: [7, 0, 0, 0, 0, 0, 0, 0]),
            ]))
        var configuration = Self.machine(DifferentialPrivacy(noiseMultiplier: 1), clients: 2).0.configuration
        configuration.privacy = Self.seeded(DifferentialPrivacy(noiseMultiplier: 1, clipping: .fixed(norm: 1)), 5)
        var machine = Machine(configuration: configuration, model: base, seed: 3)
        let ids = [ClientID("a"), ClientID("b")]
        for id in ids { _ = machine.register(id, now: .zero) }
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        var actions: [Machine.Action] = []
        for (index, task) in tasks.enumerated() {
            // A client's step count reveals how much data it has: nothing bounds it, so it is not averaged.
            let steps = UInt8(100 + index)
            actions = try machine.fitResult(
                task.id, client: ids[index],
                weights: ModelWeights([
                    "w": Tensor(shape: [2], values: [0.1, 0.1]),
                    "steps": Tensor(shape: [1], dtype: .int64, littleEndianBytes: [steps, 0, 0, 0, 0, 0, 0, 0]),
                ]), numExamples: 5, metrics: [:], now: .zero)
        }
        guard case .storeCandidate(_, _, let weights, _, _)? = actions.last else {
            Issue.record("expected the aggregate, got \(actions)")
            return
        }
        #expect(weights["steps"] == base.weights["steps"])
        #expect(weights["w"]!.doubleValues != [0.1, 0.1], "the float tensor is noised")
    }

    @Test func aNoisedAverageThatOverflowsFailsTheRoundAndSpendsNothing() throws {
        // The largest settings accepted put noise of 1e18 on an F16 tensor (which holds 65,504).
        let base = GlobalModel(
            version: 1, sha256: "v1",
            weights: ModelWeights(["h": Tensor(shape: [4], dtype: .float16, converting: [0, 0, 0, 0])]))
        var configuration = Self.machine(DifferentialPrivacy(), clients: 2).0.configuration
        configuration.privacy = DifferentialPrivacy(
            noiseMultiplier: DifferentialPrivacy.maxNoiseMultiplier, clipping: .fixed(norm: 1e12))
        var machine = Machine(configuration: configuration, model: base, seed: 3)
        let ids = [ClientID("a"), ClientID("b")]
        for id in ids { _ = machine.register(id, now: .zero) }
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        var actions: [Machine.Action] = []
        for (index, task) in tasks.enumerated() {
            actions += try machine.fitResult(
                task.id, client: ids[index],
                weights: ModelWeights(["h": Tensor(shape: [4], dtype: .float16, converting: [1, 1, 1, 1])]),
                numExamples: 5, metrics: [:], now: .zero)
        }
        #expect(!actions.contains { if case .storeCandidate = $0 { true } else { false } }, "nothing stored")
        let failure = actions.compactMap { action -> RoundFailure? in
            guard case .roundFinished(let report) = action, case .failed(let failure) = report.outcome else {
                return nil
            }
            return failure
        }
        #expect(failure.first?.code == .aggregationFailed, "\(actions)")
        #expect(machine.privacy?.accountant.rounds == 0)
    }

    @Test func aSpendStoredBeforeTheCandidateIsHeldCountsOnce() throws {
        var (machine, ids) = Self.machine(
            Self.seeded(DifferentialPrivacy(noiseMultiplier: 1, clipping: .fixed(norm: 1)), 2), clients: 2)
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        var actions: [Machine.Action] = []
        for (index, task) in tasks.enumerated() {
            actions = try machine.fitResult(
                task.id, client: ids[index], weights: ModelWeights(["w": Tensor(shape: [1], values: [0.5])]),
                numExamples: 5, metrics: [:], now: .zero)
        }
        guard case .storeCandidate(1, _, _, _, .some)? = actions.last else {
            Issue.record("expected the aggregate with its spend, got \(actions)")
            return
        }
        machine.privacySpendStored(round: 1)
        #expect(machine.privacy?.accountant.rounds == 1, "counted as soon as the ledger row is committed")
        // The server then fails to hold the candidate: the spend stays counted, once.
        _ = machine.candidateStoreFailed(round: 1, message: "out of memory", now: .zero)
        #expect(machine.privacy?.accountant.rounds == 1)
    }

    @Test func theAverageCarriesGaussianNoiseOfZTimesCOverN() throws {
        let size = 100_000
        var (machine, ids) = Self.machine(
            Self.seeded(DifferentialPrivacy(noiseMultiplier: 2, clipping: .fixed(norm: 0.5)), 11), clients: 4,
            size: size)
        let (weights, _) = try Self.round(&machine, ids, values: [0, 0, 0, 0], size: size)
        let values = weights["w"]!.doubleValues
        let mean = values.reduce(0, +) / Double(size)
        let deviation = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(size - 1)).squareRoot()
        // z·C/n = 2 · 0.5 / 4 = 0.25; the sample's own spread is 0.25/√(2·10⁵) ≈ 0.0006.
        #expect(abs(deviation - 0.25) < 0.005, "standard deviation \(deviation)")
        #expect(abs(mean) < 0.005, "mean \(mean)")
        let fourthMoment = values.map { pow(($0 - mean) / deviation, 4) }.reduce(0, +) / Double(size)
        #expect(abs(fourthMoment - 3) < 0.1, "a Gaussian's kurtosis is 3, got \(fourthMoment)")
    }

    @Test func anotherSeedDrawsOtherNoise() throws {
        func draw(_ seed: UInt64) throws -> [Float] {
            var (machine, ids) = Self.machine(
                Self.seeded(DifferentialPrivacy(noiseMultiplier: 1, clipping: .fixed(norm: 1)), seed), clients: 2,
                size: 8
            )
            return try Self.round(&machine, ids, values: [0, 0], size: 8).weights["w"]!.floatValues
        }
        #expect(try draw(1) == draw(1))
        #expect(try draw(1) != draw(2))
    }

    @Test func adaptiveClippingMovesTheNormTowardsTheTargetQuantile() throws {
        let privacy = DifferentialPrivacy(
            noiseMultiplier: 0,
            clipping: .adaptive(initialNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countStandardDeviation: 0))
        var (machine, ids) = Self.machine(privacy, clients: 4)
        // Three of four within C = 1: b = 0.75, so C ← exp(−0.2·(0.75 − 0.5)).
        let first = try Self.round(&machine, ids, values: [0.5, 0.8, 0.9, 3])
        #expect(abs(first.weights["w"]!.doubleValues[0] - 0.8) < 1e-6)
        let next = exp(-0.2 * 0.25)
        #expect(abs((first.spend?.nextClipNorm ?? 0) - next) < 1e-12)
        #expect(abs((machine.privacy?.clipNorm ?? 0) - next) < 1e-12)
        // Round 2 trains from 0.8 and clips to the new norm; all four beyond it: b = 0, C ← C·exp(0.2·0.5).
        let second = try Self.round(&machine, ids, values: [2, 2, 2, 2])
        #expect(abs(second.weights["w"]!.doubleValues[0] - (0.8 + next)) < 1e-6)
        #expect(second.spend?.clipNorm == next)
        #expect(abs((machine.privacy?.clipNorm ?? 0) - next * exp(0.1)) < 1e-12)
    }

    @Test func aRoundThatWouldPassTheBudgetIsNotStarted() throws {
        // No sampling: each round is the Gaussian mechanism with z = 2.
        let afterTwo = RDPAccountant().composing(samplingRate: 1, noiseMultiplier: 2, rounds: 2).epsilon(delta: 1e-5)
        let afterThree = RDPAccountant().composing(samplingRate: 1, noiseMultiplier: 2, rounds: 3).epsilon(delta: 1e-5)
        let privacy = Self.seeded(
            DifferentialPrivacy(
                noiseMultiplier: 2, clipping: .fixed(norm: 1), epsilonBudget: (afterTwo + afterThree) / 2),
            1)
        var (machine, ids) = Self.machine(privacy, clients: 2)
        _ = try Self.round(&machine, ids, values: [0.1, 0.2])
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        var actions: [Machine.Action] = []
        for (index, task) in tasks.enumerated() {
            actions = try machine.fitResult(
                task.id, client: ids[index], weights: ModelWeights(["w": Tensor(shape: [1], values: [0.1])]),
                numExamples: 1, metrics: [:], now: .zero)
        }
        guard case .storeCandidate(2, _, let weights, _, _)? = actions.last else {
            Issue.record("round 2 should aggregate: \(actions)")
            return
        }
        _ = machine.candidateStored(
            round: 2, candidate: GlobalModel(version: 3, sha256: "v3", weights: weights), now: .zero)
        let afterCommit = machine.committed(round: 2, now: .zero)
        let refusal = afterCommit.compactMap { action -> (Double, Double, Double)? in
            if case .privacyBudgetReached(let spent, let projected, let budget) = action {
                return (spent, projected, budget)
            }
            return nil
        }
        #expect(refusal.count == 1, "\(afterCommit)")
        #expect(abs((refusal.first?.0 ?? 0) - afterTwo) < 1e-9 && abs((refusal.first?.1 ?? 0) - afterThree) < 1e-9)
        #expect(machine.phaseName == .finished && machine.privacy?.budgetReached == true)
        #expect(machine.currentRound == 2, "round 3 never started")
        #expect(!machine.tick(now: .seconds(1)).contains { if case .roundStarted = $0 { true } else { false } })
    }

    @Test func aMachineOnASpentLedgerStartsFinished() {
        let ledger = (1...3).map {
            PrivacySpend(
                round: $0, samplingRate: 1, noiseMultiplier: 2, clipNorm: 1, nextClipNorm: 1, results: 2, unclipped: 2)
        }
        let spent = RDPAccountant().composing(samplingRate: 1, noiseMultiplier: 2, rounds: 3).epsilon(delta: 1e-5)
        let fourth = RDPAccountant().composing(samplingRate: 1, noiseMultiplier: 2, rounds: 4).epsilon(delta: 1e-5)
        let (spentMachine, _) = Self.machine(
            DifferentialPrivacy(noiseMultiplier: 2, epsilonBudget: (spent + fourth) / 2), clients: 2, ledger: ledger)
        #expect(spentMachine.phaseName == .finished && spentMachine.privacy?.budgetReached == true)
        let (roomyMachine, _) = Self.machine(
            DifferentialPrivacy(noiseMultiplier: 2, epsilonBudget: fourth * 1.01), clients: 2, ledger: ledger)
        #expect(roomyMachine.phaseName == .training, "a fourth round still fits: it started")
    }

    @Test func theLedgerFromTheStoreResumesEpsilonAndTheClipNorm() {
        let ledger = (1...5).map {
            PrivacySpend(
                round: $0, samplingRate: 0.1, noiseMultiplier: 1.1, clipNorm: 1, nextClipNorm: 0.5 + Double($0),
                results: 10, unclipped: 5)
        }
        let privacy = DifferentialPrivacy(
            noiseMultiplier: 1.1,
            clipping: .adaptive(initialNorm: 0.1, targetQuantile: 0.5, learningRate: 0.2, countStandardDeviation: nil))
        let account = PrivacyAccount(settings: privacy, ledger: ledger)
        let expected = RDPAccountant().composing(samplingRate: 0.1, noiseMultiplier: 1.1, rounds: 5).epsilon(
            delta: 1e-5)
        #expect(account.epsilon == expected && account.accountant.rounds == 5)
        #expect(account.clipNorm == 5.5, "the last round's next clip norm")
        #expect(PrivacyAccount(settings: DifferentialPrivacy(clipping: .fixed(norm: 2)), ledger: ledger).clipNorm == 2)
    }

    @Test func settingsThatCannotHoldAreRefused() {
        var configuration = RoundConfiguration()
        configuration.privacy = DifferentialPrivacy()
        #expect(throws: Never.self) { try configuration.checkPrivacy() }
        configuration.weightCap = WeightCap(maxShare: 0.5)
        #expect { try configuration.checkPrivacy() } throws: {
            ($0 as? PrivacyConfigurationError)?.code == .incompatible
        }
        configuration.weightCap = nil
        configuration.clipNorm = 1
        #expect { try configuration.checkPrivacy() } throws: {
            ($0 as? PrivacyConfigurationError)?.code == .incompatible
        }
        configuration.clipNorm = nil
        // Adaptive clipping with the default count noise: a quorum of 2 gives σ_b = 0.1, too little for z = 1.
        configuration.privacy = DifferentialPrivacy(
            noiseMultiplier: 1,
            clipping: .adaptive(initialNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countStandardDeviation: nil))
        #expect { try configuration.checkPrivacy() } throws: {
            ($0 as? PrivacyConfigurationError)?.code == .countNoiseTooSmall
        }
        configuration.privacy = DifferentialPrivacy()
        configuration.strategy = try! AggregationStrategy(name: "fedmedian")
        #expect { try configuration.checkPrivacy() } throws: {
            ($0 as? PrivacyConfigurationError)?.code == .incompatible
        }
        for bad in [
            DifferentialPrivacy(noiseMultiplier: -1), DifferentialPrivacy(clipping: .fixed(norm: 0)),
            DifferentialPrivacy(delta: 1), DifferentialPrivacy(epsilonBudget: 0),
            DifferentialPrivacy(noiseMultiplier: 1e7), DifferentialPrivacy(clipping: .fixed(norm: 1e13)),
            DifferentialPrivacy(noiseMultiplier: 0, epsilonBudget: 5),
            DifferentialPrivacy(
                clipping: .adaptive(initialNorm: 1, targetQuantile: 1.5, learningRate: 0.2, countStandardDeviation: nil)
            ),
            DifferentialPrivacy(
                noiseMultiplier: 1,
                clipping: .adaptive(initialNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countStandardDeviation: 0.5)
            ),
        ] {
            #expect(throws: PrivacyConfigurationError.self) { try bad.validate() }
        }
    }

    @Test func adaptiveClippingLeavesTheUpdatesTheRestOfTheNoise() throws {
        let privacy = DifferentialPrivacy(
            noiseMultiplier: 1,
            clipping: .adaptive(initialNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countStandardDeviation: nil))
        // 100 selected: σ_b = 5, z_Δ = (1 − 1/100)^(−½).
        #expect(abs(try privacy.updateNoiseMultiplier(selected: 100) - 1 / 0.99.squareRoot()) < 1e-12)
        #expect(throws: PrivacyConfigurationError.self) { try privacy.updateNoiseMultiplier(selected: 10) }
        #expect(DifferentialPrivacy.samplingRate == 1, "no amplification by sampling is credited")
    }
}
