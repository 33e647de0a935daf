import CoreMetrics
import CurlHTTP
import Logging
import ServiceLifecycle
import Synchronization

/// Sends finished spans to an OTLP/HTTP receiver (protobuf) through libcurl.
///
/// `enqueue` is O(1) under a lock and never waits: exporting can never slow a round. A full queue drops the
/// span and counts it. A background loop sends batches every `scheduleDelay` (or as soon as a batch is full),
/// retries failures with doubling backoff, and on graceful shutdown flushes what is still queued.
public final class OTLPHTTPExporter: Service, Sendable {
    private struct State {
        var queue: [SpanRecord] = []
        var lastExport = ContinuousClock.now
    }

    public let configuration: OTLPExporterConfiguration
    private let state = Mutex(State())
    private let http = CurlHTTPClient()
    private let exported: Counter
    private let dropped: Counter
    private let failures: Counter
    private let logger: Logger

    /// - Parameter metricsFactory: where the exported / dropped / failure counters go.
    public init(configuration: OTLPExporterConfiguration, metricsFactory: any MetricsFactory, logger: Logger) {
        precondition(configuration.endpoint != nil, "an exporter needs an endpoint; leave tracing off without one")
        self.configuration = configuration
        self.exported = Counter(label: MetricCatalogue.spansExported.name, factory: metricsFactory)
        self.dropped = Counter(label: MetricCatalogue.spansDropped.name, factory: metricsFactory)
        self.failures = Counter(label: MetricCatalogue.exportFailures.name, factory: metricsFactory)
        self.logger = logger
    }

    deinit {
        http.shutdown()
    }

    /// Queues a finished span; drops (and counts) it when the queue is full.
    public func enqueue(_ span: SpanRecord) {
        let accepted = state.withLock { state -> Bool in
            guard state.queue.count < configuration.maxQueueSize else { return false }
            state.queue.append(span)
            return true
        }
        if !accepted { dropped.increment() }
    }

    /// Spans waiting to be sent.
    public var queuedCount: Int { state.withLock { $0.queue.count } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                let due = self.state.withLock { state in
                    state.queue.count >= self.configuration.maxBatchSize
                        || (!state.queue.isEmpty
                            && state.lastExport.advanced(by: self.configuration.scheduleDelay) <= .now)
                }
                if due { await self.exportNextBatch() }
            }
        }
        await flush()
    }

    /// Sends everything queued now (batch by batch); returns when the queue is empty.
    public func flush() async {
        while queuedCount > 0 { await exportNextBatch() }
    }

    private func exportNextBatch() async {
        let batch = state.withLock { state -> [SpanRecord] in
            let batch = Array(state.queue.prefix(configuration.maxBatchSize))
            state.queue.removeFirst(batch.count)
            state.lastExport = .now
            return batch
        }
        guard !batch.isEmpty, let endpoint = configuration.endpoint else { return }
        let request = HTTPRequest(
            method: "POST", url: endpoint,
            headers: [("Content-Type", "application/x-protobuf")] + configuration.headers,
            body: OTLPTraceEncoder.encode(batch, serviceName: configuration.serviceName),
            timeout: configuration.exportTimeout)
        var delay = Duration.milliseconds(100)
        for attempt in 0...configuration.maxRetries {
            do {
                let response = try await http.execute(request)
                if (200..<300).contains(response.status) {
                    exported.increment(by: batch.count)
                    return
                }
                // 4xx other than 408/429 will not succeed on a retry.
                if (400..<500).contains(response.status), response.status != 408, response.status != 429 {
                    logger.warning("OTLP receiver refused spans", metadata: ["status": "\(response.status)"])
                    break
                }
            } catch is CancellationError {
                break
            } catch {
                logger.debug("OTLP export attempt failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            }
            if attempt < configuration.maxRetries {
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
        failures.increment()
        dropped.increment(by: batch.count)
    }
}
