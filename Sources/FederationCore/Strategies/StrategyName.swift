/// The aggregation strategies Rondo runs (`rondo serve --strategy NAME`). The raw value is the name on the
/// command line, in `/v1/status` and in each checkpoint's record.
///
/// Each strategy takes the round's example-weighted FedAvg average and decides what the next global model is.
/// Defaults of every parameter are Flower 1.40's, so a federation moving from Flower keeps its behaviour.
public enum StrategyName: String, Sendable, CaseIterable, Codable, Hashable {
    /// Federated averaging (McMahan et al., AISTATS 2017): the next model is the example-weighted mean of the
    /// accepted results. No parameters, no server state.
    case fedAvg = "fedavg"
    /// FedAvg with server momentum (Hsu, Qi and Brown, 2019, "Measuring the effects of non-identical data
    /// distribution for federated visual classification"): the pseudo-gradient (model minus average) feeds a
    /// heavy-ball momentum buffer; the model steps by `server_learning_rate` along it.
    case fedAvgM = "fedavgm"
    /// FedAdam (Reddi et al., ICLR 2021, "Adaptive federated optimization", Algorithm 2): Adam on the
    /// pseudo-gradient, with Flower's bias-corrected step size.
    case fedAdam = "fedadam"
    /// FedYogi (Reddi et al., ICLR 2021): Yogi's additive second-moment update on the pseudo-gradient.
    case fedYogi = "fedyogi"
    /// FedAdagrad (Reddi et al., ICLR 2021): Adagrad's accumulated second moment on the pseudo-gradient.
    case fedAdagrad = "fedadagrad"
    /// FedProx (Li et al., MLSys 2020): each client adds (μ/2)·‖w − w_global‖² to its local loss, which keeps
    /// heterogeneous sites from drifting apart; μ travels in every fit task's config as `proximal_mu`, and
    /// both SDKs' training helpers apply it. The server averages as FedAvg.
    case fedProx = "fedprox"
    /// Coordinate-wise median of the results, unweighted (Yin et al., ICML 2018, "Byzantine-robust distributed
    /// learning"): a minority of arbitrary results cannot move any coordinate past the honest ones.
    case fedMedian = "fedmedian"
    /// Coordinate-wise trimmed mean (Yin et al., ICML 2018): per coordinate, the ⌊β·n⌋ smallest and largest
    /// values are cut and the rest averaged, unweighted.
    case fedTrimmedAvg = "fedtrimmedavg"
    /// Krum and Multi-Krum (Blanchard et al., NeurIPS 2017): each result is scored by its summed squared
    /// distance to its n − f − 2 nearest others; Krum keeps the best-scored result, Multi-Krum averages the m
    /// best (weighted by examples).
    case krum

    /// Whether the strategy needs every result of the round at once (robust aggregators), instead of folding
    /// each into FedAvg's running sums as it arrives. Such rounds keep the accepted results until training
    /// closes: uploads stay in their spool files on disk, and aggregation reads them block by block.
    public var needsEveryUpdate: Bool {
        switch self {
        case .fedMedian, .fedTrimmedAvg, .krum: true
        default: false
        }
    }

    /// The parameters the strategy takes, with their defaults and accepted values.
    public var parameters: [StrategyParameter: StrategyParameter.Spec] {
        switch self {
        case .fedAvg:
            [:]
        case .fedAvgM:
            [
                .serverLearningRate: .init(default: 1, range: 1e-12...1e3),
                .serverMomentum: .init(default: 0, range: 0...0.999_999),
            ]
        case .fedAdam:
            [
                .eta: .init(default: 0.1, range: 1e-12...1e3), .beta1: .init(default: 0.9, range: 0...0.999_999),
                .beta2: .init(default: 0.99, range: 0...0.999_999), .tau: .init(default: 1e-9, range: 1e-15...1),
            ]
        case .fedYogi:
            [
                .eta: .init(default: 0.01, range: 1e-12...1e3), .beta1: .init(default: 0.9, range: 0...0.999_999),
                .beta2: .init(default: 0.99, range: 0...0.999_999), .tau: .init(default: 1e-3, range: 1e-15...1),
            ]
        case .fedAdagrad:
            [.eta: .init(default: 0.1, range: 1e-12...1e3), .tau: .init(default: 1e-9, range: 1e-15...1)]
        case .fedProx:
            [.proximalMu: .init(default: 0, range: 0...1e4, required: true)]
        case .fedMedian:
            [:]
        case .fedTrimmedAvg:
            [.beta: .init(default: 0.2, range: 0...0.499_999)]
        case .krum:
            [
                .numMaliciousClients: .init(default: 0, range: 0...100_000, integral: true),
                .numClientsToKeep: .init(default: 0, range: 0...100_000, integral: true),
            ]
        }
    }
}
