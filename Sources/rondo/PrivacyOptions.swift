import ArgumentParser
import FederationCore

/// `--dp-*`: central differential privacy, DP-FedAvg (`rondo serve`, `rondo demo`). Off unless
/// `--dp-noise-multiplier` is given.
struct PrivacyOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Turns on central differential privacy (DP-FedAvg): each update is clipped, every update weighs the "
                + "same, and the sum gets Gaussian noise of this many clip norms (z). 0 clips without noise "
                + "(epsilon is then unbounded).", valueName: "Z"))
    var dpNoiseMultiplier: Double?
    @Option(
        help: ArgumentHelp(
            "The clip norm for updates' distance to the base model (the initial one with --dp-adaptive-clipping; "
                + "default 1, or 0.1 when adaptive).", valueName: "C"))
    var dpClipNorm: Double?
    @Flag(help: "Adapt the clip norm to a quantile of update norms (Andrew et al. 2021).")
    var dpAdaptiveClipping = false
    @Option(help: "Adaptive clipping: the quantile of update norms to clip at (default 0.5).")
    var dpTargetQuantile: Double?
    @Option(help: "Adaptive clipping: the learning rate of the clip norm's geometric update (default 0.2).")
    var dpClipLearningRate: Double?
    @Option(
        help: "Adaptive clipping: noise on the count of unclipped updates (default: selected clients / 20).")
    var dpClippedCountStddev: Double?
    @Option(help: "The delta epsilon is reported at; keep it below 1 / (clients in the federation) (default 1e-5).")
    var dpDelta: Double?
    @Option(help: "Refuse to start a round that would take epsilon past this; the federation then finishes.")
    var dpEpsilonBudget: Double?

    /// The settings, or nil when differential privacy is off.
    /// - Throws: `ValidationError` for a value out of range, or a `--dp-*` option given without
    ///   `--dp-noise-multiplier`.
    func resolved() throws -> DifferentialPrivacy? {
        guard let dpNoiseMultiplier else {
            if dpClipNorm != nil || dpAdaptiveClipping || dpEpsilonBudget != nil || dpDelta != nil {
                throw ValidationError("--dp-* options need --dp-noise-multiplier (0 for clipping without noise)")
            }
            return nil
        }
        if !dpAdaptiveClipping, dpTargetQuantile != nil || dpClipLearningRate != nil || dpClippedCountStddev != nil {
            throw ValidationError(
                "--dp-target-quantile, --dp-clip-learning-rate and --dp-clipped-count-stddev need --dp-adaptive-clipping"
            )
        }
        let clipping: DifferentialPrivacy.Clipping =
            dpAdaptiveClipping
            ? .adaptive(
                initialNorm: dpClipNorm ?? 0.1, targetQuantile: dpTargetQuantile ?? 0.5,
                learningRate: dpClipLearningRate ?? 0.2,
                countStandardDeviation: dpClippedCountStddev)
            : .fixed(norm: dpClipNorm ?? 1)
        let settings = DifferentialPrivacy(
            noiseMultiplier: dpNoiseMultiplier, clipping: clipping, delta: dpDelta ?? 1e-5,
            epsilonBudget: dpEpsilonBudget)
        do {
            try settings.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return settings
    }

    func validate() throws { _ = try resolved() }
}
