import FederationCore
import Testing

/// The server step's arithmetic against hand-computed values (the Flower comparison is in the Python suite,
/// `Clients/python/tests/test_strategies.py`), its state's round trip, and what it leaves alone.
@Suite struct ServerOptimizerTests {
    static func model(_ values: [Float], bias: [Int64] = [7]) -> ModelWeights {
        ModelWeights([
            "w": Tensor(shape: [values.count], values: values),
            "steps": Tensor(
                shape: [bias.count], dtype: .int64, converting: bias.map { Double($0) }),
        ])
    }

    static func values(_ weights: ModelWeights) -> [Double] { weights["w"]!.doubleValues }

    @Test func fedAdamTakesFlowersBiasCorrectedStep() throws {
        let strategy = try AggregationStrategy(name: "fedadam", options: ["eta": "0.1", "tau": "0.001"])
        let base = Self.model([1, 2])
        let average = Self.model([1.5, 1.0])
        let (next, state) = try ServerOptimizer.step(strategy, base: base, average: average, state: nil)
        // Δ = (0.5, −1); m = 0.1·Δ; v = 0.01·Δ²; η̂ = 0.1·√(1 − 0.99²) / (1 − 0.9²) at t + 1 = 2.
        let stepSize = 0.1 * (1 - 0.99 * 0.99).squareRoot() / (1 - 0.9 * 0.9)
        let expected = [1 + stepSize * 0.05 / (0.05 + 0.001), 2 - stepSize * 0.1 / (0.1 + 0.001)]
        for (got, want) in zip(Self.values(next), expected) { #expect(abs(got - want) <= 1e-6 * abs(want)) }
        let kept = try #require(state)
        #expect(kept.steps == 1 && kept.strategy == .fedAdam)
        #expect(kept.firstMoment["w"]!.doubleValues.map { ($0 * 1e6).rounded() } == [50_000, -100_000])
        #expect(next["steps"] == average["steps"], "integer tensors take the average unchanged, with no state")
        #expect(kept.firstMoment["steps"] == nil && kept.secondMoment["steps"] == nil)
    }

    @Test func theStateRoundTripsThroughItsFileAndStepsOn() throws {
        let strategy = try AggregationStrategy(name: "fedyogi")
        var model = Self.model([1, 2, 3])
        var state: ServerOptimizerState?
        for round in 1...3 {
            let average = Self.model(Self.values(model).map { Float($0 + 0.25 * Double(round)) })
            (model, state) = try ServerOptimizer.step(strategy, base: model, average: average, state: state)
            let stored = try ServerOptimizerState(file: SafeTensorsFile.decode(state!.file.encoded()))
            #expect(stored == state, "what the store keeps is what the step made")
            state = stored
        }
        #expect(state?.steps == 3)
        #expect(state!.fits(model, strategy: strategy))
        #expect(!state!.fits(model, strategy: try AggregationStrategy(name: "fedadam")), "another strategy's state")
        #expect(!state!.fits(Self.model([1, 2]), strategy: strategy), "another layout's state")
    }

    @Test func aStateThatDoesNotFitStartsAfresh() throws {
        let adam = try AggregationStrategy(name: "fedadam")
        let base = Self.model([1, 2])
        let average = Self.model([2, 3])
        let fresh = try ServerOptimizer.step(adam, base: base, average: average, state: nil)
        let yogiState = try ServerOptimizer.step(
            try AggregationStrategy(name: "fedyogi"), base: base, average: average, state: nil
        )
        .state
        let resumed = try ServerOptimizer.step(adam, base: base, average: average, state: yogiState)
        #expect(resumed.weights == fresh.weights && resumed.state == fresh.state)
    }

    @Test func fedAvgAndFedAvgMWithoutServerOptimisationKeepTheAverage() throws {
        let base = Self.model([1, 2])
        let average = Self.model([3, 5])
        for strategy in [AggregationStrategy.fedAvg, try AggregationStrategy(name: "fedavgm")] {
            let (next, state) = try ServerOptimizer.step(strategy, base: base, average: average, state: nil)
            #expect(next == average && state == nil, "\(strategy)")
        }
        let momentum = try AggregationStrategy(
            name: "fedavgm", options: ["server_momentum": "0.5", "server_learning_rate": "1"])
        let first = try ServerOptimizer.step(momentum, base: base, average: average, state: nil)
        #expect(Self.values(first.weights) == [3, 5], "the first step's momentum is the pseudo-gradient itself")
        let second = try ServerOptimizer.step(momentum, base: first.weights, average: first.weights, state: first.state)
        // g = 0 now; m = 0.5·(−2, −3); x' = x − m.
        #expect(Self.values(second.weights) == [4, 6.5])
    }

    @Test func aStepThatOverflowsTheModelsDtypeIsRefused() throws {
        // F16 tops out at 65,504: FedAdagrad's first step moves each value by about η.
        let strategy = try AggregationStrategy(name: "fedadagrad", options: ["eta": "1000"])
        let base = ModelWeights(["w": Tensor(shape: [2], dtype: .float16, converting: [65_000, 1])])
        let average = ModelWeights(["w": Tensor(shape: [2], dtype: .float16, converting: [65_500, 2])])
        #expect(throws: NonFiniteStep(tensor: "w")) {
            _ = try ServerOptimizer.step(strategy, base: base, average: average, state: nil)
        }
    }

    @Test func bf16ModelsKeepF32MomentsAndTheirOwnDtype() throws {
        let strategy = try AggregationStrategy(name: "fedadagrad", options: ["eta": "0.5"])
        let base = ModelWeights(["w": Tensor(shape: [2], dtype: .bfloat16, converting: [1, -1])])
        let average = ModelWeights(["w": Tensor(shape: [2], dtype: .bfloat16, converting: [2, -2])])
        let (next, state) = try ServerOptimizer.step(strategy, base: base, average: average, state: nil)
        #expect(next["w"]?.dtype == .bfloat16)
        #expect(state?.secondMoment["w"]?.dtype == .float32)
        #expect(state?.firstMoment.tensors.isEmpty == true, "Adagrad's m is the step's own Δ: not kept")
        // Δ = (1, −1), v = Δ², x' = x + 0.5·Δ/(|Δ| + 1e-9) = (1.5, −1.5).
        #expect(next["w"]!.doubleValues == [1.5, -1.5])
    }

    @Test(
        arguments: [
            ("fedsgd", [:], StrategyConfigurationError.Code.unknownStrategy),
            ("fedadam", ["momentum": "0.9"], .unknownParameter),
            ("fedavg", ["eta": "0.1"], .unknownParameter),
            ("fedadam", ["eta": "nan"], .invalidValue),
            ("fedadam", ["eta": "-1"], .invalidValue),
            ("fedadam", ["beta_1": "1"], .invalidValue),
            ("fedyogi", ["tau": "0"], .invalidValue),
            ("fedavgm", ["server_momentum": "1e400"], .invalidValue),
        ] as [(String, [String: String], StrategyConfigurationError.Code)])
    func badStrategiesAndParametersAreRefusedByName(
        name: String, options: [String: String], code: StrategyConfigurationError.Code
    ) {
        #expect {
            _ = try AggregationStrategy(name: name, options: options)
        } throws: { ($0 as? StrategyConfigurationError)?.code == code }
    }

    @Test func fedProxNeedsItsMuAndSendsItWithEveryFitTask() throws {
        #expect {
            _ = try AggregationStrategy(name: "fedprox")
        } throws: { ($0 as? StrategyConfigurationError)?.code == .missingParameter }
        let strategy = try AggregationStrategy(name: "fedprox", options: ["proximal_mu": "0.1"])
        #expect(strategy.fitConfig == ["proximal_mu": "0.1"] && !strategy.keepsServerState)
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 0),
            minFitResults: 1, fitConfig: ["learning_rate": "0.1", "proximal_mu": "9"], strategy: strategy)
        var machine = RoundStateMachine<TestInstant>(
            configuration: configuration, model: RoundStateMachineTests.base, seed: 1)
        _ = machine.register(ClientID("a"), now: .zero)
        let taken = machine.takeTask(for: ClientID("a"), now: .zero)
        let task = try #require(taken)
        #expect(task.config == ["learning_rate": "0.1", "proximal_mu": "0.1"], "the strategy's μ wins")
    }

    @Test func defaultsAreFlowersAndTheDescriptionNamesEveryParameter() throws {
        let adam = try AggregationStrategy(name: "FedAdam")
        #expect(adam.namedParameters == ["eta": 0.1, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-9])
        #expect(adam.description == "fedadam(beta_1=0.9, beta_2=0.99, eta=0.1, tau=1e-09)")
        #expect(try AggregationStrategy(name: "fedyogi").namedParameters["tau"] == 1e-3)
        #expect(AggregationStrategy.fedAvg.description == "fedavg" && !AggregationStrategy.fedAvg.keepsServerState)
    }
}
