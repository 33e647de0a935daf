import CoreMetrics
import FederationCore
import FederationTelemetry
import Foundation
import ModelManager

/// The coordinator's metric emitters, named after what happened rather than after metric types.
///
/// Emits through swift-metrics with an injected factory (the executable bootstraps the Prometheus one, tests
/// pass their own). Every labelled family is created up front for all of its values, so a series exists at 0
/// before its first event and dashboards never see a missing series.
public struct CoordinatorMetrics: Sendable {
    private let factory: any MetricsFactory

    /// - Parameter factory: where metrics go; default the process-wide bootstrapped factory.
    public init(
        factory: any MetricsFactory = MetricsSystem.factory, version: String = "dev", revision: String = "unknown"
    ) {
        self.factory = factory
        gauge(MetricCatalogue.buildInfo, [("version", version), ("revision", revision)]).record(1)
        // `rondo_leader` belongs to `LeadershipMetrics` (a standby reports 0 before any coordinator exists; the
        // coordinator sets 1 when it starts).
        let ownedElsewhere: Set<String> = [MetricCatalogue.leader.name]
        for definition in MetricCatalogue.all
        where definition.labels.allSatisfy({ $0.values != nil }) && !ownedElsewhere.contains(definition.name) {
            for labels in Self.combinations(definition.labels.map { ($0.name, $0.values ?? []) }) {
                switch definition.kind {
                case .counter: counter(definition, labels).increment(by: 0)
                case .gauge: gauge(definition, labels).record(0)
                case .histogram: break  // an empty histogram would suggest observations of 0
                }
            }
        }
        gauge(MetricCatalogue.processStart, []).record(ProcessStats.startTime ?? 0)
    }

    // MARK: Rounds

    public func phaseChanged(to phase: RoundPhase, from previous: RoundPhase, after duration: Duration) {
        for candidate in RoundPhase.allCases {
            gauge(MetricCatalogue.phase, [("phase", candidate.rawValue)]).record(candidate == phase ? 1 : 0)
        }
        recorder(MetricCatalogue.phaseDuration, [("phase", previous.rawValue)]).record(duration.seconds)
    }

    public func roundStarted(round: Int, selected: Int) {
        gauge(MetricCatalogue.round, []).record(Double(round))
        gauge(MetricCatalogue.clientsSelected, []).record(Double(selected))
    }

    /// A goal-count selection window ended.
    public func selectionEnded(_ outcome: SelectionOutcome, checkedIn: Int, after wait: Duration) {
        counter(MetricCatalogue.selectionWindows, [("outcome", outcome.rawValue)]).increment()
        recorder(MetricCatalogue.selectionWait, []).record(wait.seconds)
        gauge(MetricCatalogue.selectionCheckedIn, []).record(Double(checkedIn))
    }

    /// The selection goal in force (nil: Flower-style sampling, exported as 0).
    public func selectionGoal(_ goal: SelectionGoal?) {
        gauge(MetricCatalogue.selectionGoal, []).record(Double(goal?.count ?? 0))
        gauge(MetricCatalogue.selectionMinimum, []).record(Double(goal?.minimum ?? 0))
    }

    /// The aggregation strategy in force.
    public func strategy(_ name: StrategyName) {
        gauge(MetricCatalogue.strategyInfo, [("strategy", name.rawValue)]).record(1)
    }

    /// A robust aggregator left `count` results out of a round.
    public func robustlyAggregated(_ strategy: StrategyName, excluded count: Int) {
        counter(MetricCatalogue.robustExclusions, [("strategy", strategy.rawValue)]).increment(by: Int64(count))
    }

    /// The server-optimizer steps behind the current model.
    public func serverOptimizerSteps(_ steps: Int) {
        gauge(MetricCatalogue.serverOptimizerSteps, []).record(Double(steps))
    }

    /// The privacy account under differential privacy: ε spent, its δ and budget, the clip norm and noise.
    public func privacy(_ account: PrivacyAccount) {
        gauge(MetricCatalogue.privacyEpsilon, []).record(account.epsilon)
        gauge(MetricCatalogue.privacyDelta, []).record(account.settings.delta)
        gauge(MetricCatalogue.privacyBudget, []).record(account.settings.epsilonBudget ?? 0)
        gauge(MetricCatalogue.privacyBudgetReached, []).record(account.budgetReached ? 1 : 0)
        gauge(MetricCatalogue.privacyClipNorm, []).record(account.clipNorm)
        gauge(MetricCatalogue.privacyNoiseMultiplier, []).record(account.settings.noiseMultiplier)
    }

    /// A poll ended without a task.
    public func idlePollAnswered() {
        counter(MetricCatalogue.idlePolls, []).increment()
    }

    /// The widest Retry-After pace steering hands out now.
    public func retryAfterSpread(seconds: Int) {
        gauge(MetricCatalogue.retryAfterSpread, []).record(Double(seconds))
    }

    /// A failed round held the next one back.
    public func roundBackedOff() {
        counter(MetricCatalogue.roundBackoffs, []).increment()
    }

    /// The wait failing rounds impose now; zero when rounds are not failing.
    public func roundBackoff(_ delay: Duration) {
        gauge(MetricCatalogue.roundBackoff, []).record(delay.seconds)
    }

    public func roundFinished<Instant>(_ report: RoundReport<Instant>) {
        let status = RoundStatus(finishing: report.outcome)
        if status == .committed { gauge(MetricCatalogue.lastCommit, []).record(Date().timeIntervalSince1970) }
        counter(MetricCatalogue.rounds, [("outcome", status.rawValue)]).increment()
        recorder(MetricCatalogue.roundDuration, []).record(report.duration.seconds)
        if let evaluation = report.evaluation {
            gauge(MetricCatalogue.evalLoss, []).record(evaluation.loss)
            if let accuracy = evaluation.metrics["accuracy"] {
                gauge(MetricCatalogue.evalAccuracy, []).record(accuracy)
            }
        }
    }

    public func modelVersion(_ version: Int) {
        gauge(MetricCatalogue.modelVersion, []).record(Double(version))
    }

    public func clients(connected: Int, registered: Int, required: Int, quorum: Int) {
        gauge(MetricCatalogue.clientsConnected, []).record(Double(connected))
        gauge(MetricCatalogue.clientsRegistered, []).record(Double(registered))
        gauge(MetricCatalogue.clientsRequired, []).record(Double(required))
        gauge(MetricCatalogue.quorum, []).record(Double(quorum))
    }

    // MARK: Results

    public func resultAccepted(kind: TaskKind, after duration: Duration?) {
        counter(MetricCatalogue.results, [("kind", kind.rawValue), ("outcome", "accepted")]).increment()
        if let duration { recorder(MetricCatalogue.taskDuration, [("kind", kind.rawValue)]).record(duration.seconds) }
    }

    /// A refused result: counted by outcome (late and duplicate are their own outcomes) and by reason.
    public func resultRefused(kind: TaskKind?, reason: String) {
        let outcome = reason == "late" || reason == "duplicate" ? reason : "rejected"
        if let kind { counter(MetricCatalogue.results, [("kind", kind.rawValue), ("outcome", outcome)]).increment() }
        counter(MetricCatalogue.rejections, [("reason", reason)]).increment()
    }

    public func dropout(kind: TaskKind, reason: DropoutReason) {
        counter(MetricCatalogue.dropouts, [("kind", kind.rawValue), ("reason", reason.rawValue)]).increment()
    }

    public func updateReceived(bytes: Int) {
        counter(MetricCatalogue.bytesReceived, []).increment(by: bytes)
        recorder(MetricCatalogue.updateSize, []).record(Double(bytes))
    }

    /// An upload cut off before its last byte.
    public func uploadAborted() {
        counter(MetricCatalogue.uploadsAborted, []).increment()
    }

    /// Uploads holding a slot now.
    public func uploadsInProgress(_ count: Int) {
        gauge(MetricCatalogue.uploadsInProgress, []).record(Double(count))
    }

    /// An accepted fit update's L2 norm.
    public func updateNorm(_ norm: Double) {
        recorder(MetricCatalogue.updateNorm, []).record(norm)
    }

    /// An accepted update was scaled down to the clip norm.
    public func updateClipped() {
        counter(MetricCatalogue.updatesClipped, []).increment()
    }

    /// How long validating and folding one fit update took.
    public func updateFolded(duration: Duration) {
        recorder(MetricCatalogue.aggregationDuration, []).record(duration.seconds)
    }

    public func modelSent(bytes: Int) {
        counter(MetricCatalogue.bytesSent, []).increment(by: bytes)
    }

    // MARK: Checkpoints

    public func checkpointWritten(success: Bool, duration: Duration, bytes: Int?) {
        counter(MetricCatalogue.checkpointWrites, [("outcome", success ? "success" : "failure")]).increment()
        guard success else { return }
        recorder(MetricCatalogue.checkpointWriteDuration, []).record(duration.seconds)
        if let bytes { recorder(MetricCatalogue.checkpointSize, []).record(Double(bytes)) }
        gauge(MetricCatalogue.lastCheckpoint, []).record(Date().timeIntervalSince1970)
    }

    public func rolledBack() {
        counter(MetricCatalogue.rollbacks, [("trigger", "manual")]).increment()
    }

    /// The federation was paused or resumed, or began or ended draining.
    public func federationState(paused: Bool, draining: Bool) {
        gauge(MetricCatalogue.paused, []).record(paused ? 1 : 0)
        gauge(MetricCatalogue.draining, []).record(draining ? 1 : 0)
    }

    /// An operator action was carried out.
    public func adminAction(_ action: OperatorAction) {
        counter(MetricCatalogue.adminActions, [("action", action.rawValue)]).increment()
    }

    /// A request was refused by authentication or authorisation.
    public func authRefused(_ refusal: AuthRefusal) {
        counter(MetricCatalogue.authRefusals, [("reason", refusal.label)]).increment()
    }

    /// A request was refused by a limit.
    public func limitRefused(_ limit: Limit) {
        counter(MetricCatalogue.limitRefusals, [("limit", limit.rawValue)]).increment()
    }

    // MARK: HTTP and process

    public func httpRequest(method: String, route: String, status: Int, duration: Duration) {
        counter(MetricCatalogue.httpRequests, [("method", method), ("route", route), ("status", String(status))])
            .increment()
        recorder(MetricCatalogue.httpDuration, [("method", method), ("route", route)]).record(duration.seconds)
    }

    /// Refreshes the process gauges from `/proc` (called just before each scrape).
    public func refreshProcessStats() {
        guard let stats = ProcessStats.current() else { return }
        let cpu = counterValue(MetricCatalogue.processCPU)
        cpu.reset()
        cpu.increment(by: stats.cpuSeconds)
        gauge(MetricCatalogue.processMemory, []).record(Double(stats.residentBytes))
        gauge(MetricCatalogue.processFDs, []).record(Double(stats.openFileDescriptors))
    }

    // MARK: Helpers

    private func counter(_ definition: MetricCatalogue.Definition, _ labels: [(String, String)]) -> Counter {
        Counter(label: definition.name, dimensions: labels, factory: factory)
    }

    private func counterValue(_ definition: MetricCatalogue.Definition) -> FloatingPointCounter {
        FloatingPointCounter(label: definition.name, dimensions: [], factory: factory)
    }

    private func gauge(_ definition: MetricCatalogue.Definition, _ labels: [(String, String)]) -> Gauge {
        Gauge(label: definition.name, dimensions: labels, factory: factory)
    }

    private func recorder(_ definition: MetricCatalogue.Definition, _ labels: [(String, String)]) -> Recorder {
        Recorder(label: definition.name, dimensions: labels, aggregate: true, factory: factory)
    }

    static func combinations(_ labels: [(String, [String])]) -> [[(String, String)]] {
        labels.reduce([[]]) { partial, label in
            partial.flatMap { prefix in label.1.map { prefix + [(label.0, $0)] } }
        }
    }
}
