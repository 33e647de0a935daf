import CoreMetrics
import FederationTelemetry

/// The leader-election metrics: whether this process leads, how often it took over, and how fresh the lease
/// is.
public struct LeadershipMetrics: Sendable {
    private let factory: CatalogueMetricsFactory

    public init(factory: CatalogueMetricsFactory) {
        self.factory = factory
    }

    /// This process stands by (another coordinator leads, or none yet).
    /// - Parameter leaseAgeSeconds: how long ago the leader renewed, when known.
    public func standingBy(leaseAgeSeconds: Double?) {
        Gauge(label: MetricCatalogue.leader.name, factory: factory).record(0)
        if let leaseAgeSeconds { lease(ageSeconds: leaseAgeSeconds) }
    }

    /// This process just took the lease.
    public func tookOver() {
        Gauge(label: MetricCatalogue.leader.name, factory: factory).record(1)
        Counter(label: MetricCatalogue.leaderChanges.name, factory: factory).increment()
        lease(ageSeconds: 0)
    }

    /// A coordinator runs (alone on its SQLite store, or holding the lease).
    public func leading() {
        Gauge(label: MetricCatalogue.leader.name, factory: factory).record(1)
    }

    public func lease(ageSeconds: Double) {
        Gauge(label: MetricCatalogue.leaseAge.name, factory: factory).record(ageSeconds)
    }
}
