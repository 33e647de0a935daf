import FederationClient
import FederationCore
import Testing

/// FedProx's term in the Swift SDK: read from the task, μ·(w − w_global) added to a gradient, (μ/2)·‖w − w_g‖²
/// as the penalty.
@Suite struct ProximalTermTests {
    static func task(_ config: [String: String]) -> TaskContext {
        TaskContext(taskID: "t", round: 1, kind: .fit, modelVersion: 1, config: config, deadlineSeconds: 60)
    }

    static let global = ModelWeights([
        "w": Tensor(shape: [2], values: [1, 2]),
        "steps": Tensor(shape: [1], dtype: .int64, converting: [5]),
    ])

    @Test func theTermComesFromTheTaskAndPullsTowardsTheGlobalModel() throws {
        let term = try #require(ProximalTerm(task: Self.task(["proximal_mu": "0.5"]), global: Self.global))
        var gradient: [Float] = [0.25, 0.25]
        term.addGradient(of: "w", weights: [3, 2], to: &gradient)
        #expect(gradient == [1.25, 0.25], "0.5·(3 − 1) added to the first, nothing to the second")
        let moved = ModelWeights([
            "w": Tensor(shape: [2], values: [3, 0]), "steps": Tensor(shape: [1], dtype: .int64, converting: [9]),
        ])
        #expect(term.penalty(moved) == 0.25 * (4 + 4), "integer tensors carry no term")
    }

    @Test(arguments: [[:], ["proximal_mu": "0"], ["proximal_mu": "-1"], ["proximal_mu": "nan"], ["proximal_mu": "x"]])
    func noTermWithoutAPositiveMu(config: [String: String]) {
        #expect(ProximalTerm(task: Self.task(config), global: Self.global) == nil)
    }
}
