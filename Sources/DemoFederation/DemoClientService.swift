import FederationClient
import FederationCore
import FederationTelemetry
import Logging
import ServiceLifecycle
import Synchronization

/// One simulated site of the demo: a `FederatedClient` with a `DigitsTrainer` on its share of the data.
///
/// With a dropout rate, the site may vanish right after receiving a fit task — its client is cancelled
/// without leaving, exactly like a crashed process — and comes back half a second later as a new
/// registration, as a restarted process would.
public struct DemoClientService: Service {
    let index: Int
    let share: DemoData.ClientShare
    let coordinatorURL: @Sendable () async -> String
    let seed: UInt64
    let dropoutRate: Double
    let logger: Logger
    let tracer: RondoTracer
    let enrolmentToken: String?
    /// Set for a malicious site (`rondo demo --malicious-rate`).
    let malicious: DemoSiteTrainer.MaliciousPlan?

    init(
        index: Int, share: DemoData.ClientShare, seed: UInt64, dropoutRate: Double, logger: Logger,
        tracer: RondoTracer = RondoTracer(sink: nil), enrolmentToken: String? = nil,
        malicious: DemoSiteTrainer.MaliciousPlan? = nil, coordinatorURL: @escaping @Sendable () async -> String
    ) {
        self.malicious = malicious
        self.enrolmentToken = enrolmentToken
        self.tracer = tracer
        self.index = index
        self.share = share
        self.seed = seed
        self.dropoutRate = dropoutRate
        self.logger = logger
        self.coordinatorURL = coordinatorURL
    }

    public func run() async throws {
        let url = await coordinatorURL()
        let dice = Mutex(SeededRandomNumberGenerator(seed: seed &+ 0x5eed &+ UInt64(index)))
        let current = Mutex<CoordinatorConnection?>(nil)
        await cancelWhenGracefulShutdown {
            var incarnation = 0
            while !Task.isCancelled {
                incarnation += 1
                let (signal, fire) = AsyncStream.makeStream(of: Void.self)
                let trainer = DigitsTrainer(
                    train: share.train, test: share.test, seed: seed &+ UInt64(index * 1000 + incarnation)
                ) { task in
                    guard dropoutRate > 0, dice.withLock({ Double.random(in: 0..<1, using: &$0) }) < dropoutRate else {
                        return
                    }
                    fire.yield()
                    try? await Task.sleep(for: .seconds(3600))  // cancelled by the vanishing below
                }
                let client = FederatedClient(
                    configuration: .init(
                        coordinatorURL: url, name: "demo-site-\(index)", enrolmentToken: enrolmentToken),
                    trainer: DemoSiteTrainer(
                        honest: trainer, plan: malicious, seed: seed &+ 0xBAD &+ UInt64(index * 1000 + incarnation)),
                    retry: RetryPolicy(initialDelay: .milliseconds(50), maxDelay: .seconds(1)),
                    longPoll: .seconds(10), logger: logger, tracer: tracer)
                current.withLock { $0 = client.connection }
                let vanished = await withTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        try? await client.participate()
                        return false
                    }
                    group.addTask {
                        for await _ in signal { return true }
                        return false
                    }
                    let first = await group.next() ?? false
                    group.cancelAll()
                    return first
                }
                fire.finish()
                guard vanished else { break }
                current.withLock { $0 = nil }
                logger.debug("demo site vanished", metadata: ["site": "\(index)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        // Graceful stop: leave properly so the coordinator does not wait for this site.
        if let connection = current.withLock({ $0 }) { try? await connection.leave() }
    }
}
