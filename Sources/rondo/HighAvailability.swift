import Coordinator
import FederationTelemetry
import Foundation
import Logging
import ModelManager
import PostgresStore
import ServiceLifecycle
import UnixSignals

/// `serve` on a shared PostgreSQL store: stand by until this process takes the leader lease, then lead while
/// a keeper renews it. A leader that loses the lease exits (status 75, EX_TEMPFAIL) rather than carry on with
/// state another leader now owns; its supervisor (Kubernetes, systemd) starts it again, as a standby.
struct HighAvailability {
    let lease: LeaderLease
    let metrics: LeadershipMetrics
    let logger: Logger

    /// How often a standby asks for the lease: a fraction of the TTL, so takeover follows expiry closely.
    var pollInterval: Duration { lease.ttl / 12 }

    /// Opens the lease's own connection (renewals never queue behind a commit on the store's connection).
    static func connect(
        _ configuration: PostgresStoreConfiguration, ttl: Duration, address: String?, metrics: LeadershipMetrics,
        logger: Logger
    ) async throws -> HighAvailability {
        let database = try await PostgresDatabase(configuration: configuration, logger: logger)
        var host = [CChar](repeating: 0, count: 256)
        let hostname =
            gethostname(&host, host.count) == 0
            ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "host"
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let lease = LeaderLease(
            database: database, holder: "\(hostname)/\(getpid())/\(suffix)", address: address, ttl: ttl,
            logger: logger)
        return HighAvailability(lease: lease, metrics: metrics, logger: logger)
    }

    /// Serves as a standby (`StandbyServer`) until this process takes the lease, and from that moment keeps
    /// renewing it (`keepLeading`), also while the standby listener closes.
    /// - Returns: the epoch it leads under and the renewing task, or nil when SIGTERM or SIGINT came first.
    func standBy(
        configuration: CoordinatorConfiguration, renderMetrics: @escaping @Sendable () -> [UInt8],
        onListening: @escaping @Sendable (Int) async -> Void
    ) async throws -> (epoch: Int64, keeper: Task<Void, Never>)? {
        if let epoch = try await lease.tryAcquire() {
            metrics.tookOver()
            return (epoch, keepLeading())
        }
        metrics.standingBy(leaseAgeSeconds: try await lease.current()?.secondsSinceRenewal)
        let leader = try await lease.current()?.address ?? "unknown"
        logger.notice("standing by: another coordinator holds the leader lease", metadata: ["leader": "\(leader)"])
        let lease = lease
        let standby = try StandbyServer(
            configuration: configuration,
            leader: {
                guard let current = try? await lease.current(), !current.expired else { return nil }
                return LeaderInfo(address: current.address, secondsSinceRenewal: current.secondsSinceRenewal)
            }, renderMetrics: renderMetrics, logger: logger, onListening: onListening)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: standby.application)], logger: logger))
        let (metrics, logger, pollInterval, election) = (metrics, logger, pollInterval, self)
        return try await withThrowingTaskGroup(of: StandbyOutcome.self) { tasks in
            tasks.addTask {
                try await group.run()
                return .serverEnded
            }
            tasks.addTask {
                while true {
                    try await Task.sleep(for: pollInterval)
                    do {
                        if let epoch = try await lease.tryAcquire() {
                            return .leading(epoch, keeper: election.keepLeading())
                        }
                        metrics.standingBy(leaseAgeSeconds: try await lease.current()?.secondsSinceRenewal)
                    } catch {
                        logger.warning("cannot read the leader lease", metadata: ["error": "\(error)"])
                    }
                }
            }
            tasks.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return .stopped }
                return .stopped
            }
            let first = try await tasks.next() ?? .stopped
            // Let the standby listener close cleanly (freeing the port for the coordinator) before the other
            // tasks are cancelled.
            await group.triggerGracefulShutdown()
            // A lease won while stopping is handed back at once.
            let handBack = { (outcome: StandbyOutcome) async in
                guard case .leading(_, let keeper) = outcome else { return }
                keeper.cancel()
                await lease.release()
            }
            if case .serverEnded = first {
            } else {
                while let next = try? await tasks.next() {
                    await handBack(next)
                    if case .serverEnded = next { break }
                }
            }
            tasks.cancelAll()
            while let next = try? await tasks.next() { await handBack(next) }
            if case .leading(let epoch, let keeper) = first {
                metrics.tookOver()
                return (epoch, keeper)
            }
            return nil
        }
    }

    private enum StandbyOutcome: Sendable {
        case leading(Int64, keeper: Task<Void, Never>)
        case stopped
        case serverEnded
    }

    /// Renews the lease every third of its TTL from now on. When the lease is lost (another coordinator took
    /// it, or the database stayed unreachable for a whole TTL), the process exits with status 75 at once: the
    /// fence has already kept any write from committing, and nothing this process holds in memory is
    /// trustworthy any more.
    func keepLeading() -> Task<Void, Never> {
        let (lease, metrics, logger) = (lease, metrics, logger)
        return Task {
            let clock = ContinuousClock()
            var renewed = clock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: lease.ttl / 3)
                if Task.isCancelled { return }
                do {
                    if try await lease.renew() {
                        renewed = clock.now
                        metrics.lease(ageSeconds: 0)
                        continue
                    }
                    // A clean stop cancels this task, then releases the lease: a renewal that lost to the release
                    // is not a lost lease.
                    if Task.isCancelled { return }
                    Self.stepDown(logger, "another coordinator took the leader lease")
                } catch {
                    let silent = renewed.duration(to: clock.now)
                    metrics.lease(ageSeconds: Double(silent.components.seconds))
                    logger.warning("cannot renew the leader lease", metadata: ["error": "\(error)"])
                    if silent >= lease.ttl { Self.stepDown(logger, "the leader lease could not be renewed for a TTL") }
                }
            }
        }
    }

    private static func stepDown(_ logger: Logger, _ reason: String) -> Never {
        logger.critical(
            "lost the leader lease: stepping down (exit 75) so a standby leads", metadata: ["reason": "\(reason)"])
        fflush(nil)  // every output stream: the log line must be out before the process is
        exit(75)
    }
}
