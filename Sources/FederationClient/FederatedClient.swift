import FederationCore
import Logging
import Tracing
import ServiceLifecycle

/// A federation participant: registers, long-polls for tasks, downloads each task's model, runs the
/// `Trainer`, and submits the answer, heartbeating while it trains.
///
/// It rides out coordinator restarts and network trouble: transport errors and 5xx answers are retried with
/// jittered backoff, and a 401 (the coordinator no longer knows this client) leads to a fresh registration.
/// A 401 on registration itself (a wrong enrolment token) is not retried: only a new token can fix it.
/// A result the coordinator refuses (late, duplicate, invalid) is logged and the client moves on.
///
/// ```swift
/// let client = FederatedClient(configuration: .init(coordinatorURL: "http://127.0.0.1:8470", name: "site-a"),
///                              trainer: MyTrainer(), logger: logger)
/// try await client.participate()   // until cancelled
/// ```
public struct FederatedClient<T: Trainer>: Service {
    public let connection: CoordinatorConnection
    private let trainer: T
    private let retry: RetryPolicy
    private let longPoll: Duration
    private let logger: Logger
    /// Continues each task's trace (from its `traceparent`) with download, train and upload spans; nil records none.
    /// Any swift-distributed-tracing tracer works; it reads `traceparent` through its `extract`.
    private let tracer: (any Tracer)?
    /// Warns when the coordinator is unreachable or throttles, and says when that is over.
    private let contact: ContactLog

    /// - Parameters:
    ///   - retry: backoff for retryable failures.
    ///   - longPoll: how long one task poll may park on the coordinator. Default 30 s.
    public init(
        configuration: CoordinatorConnection.Configuration, trainer: T, retry: RetryPolicy = RetryPolicy(),
        longPoll: Duration = .seconds(30), logger: Logger, tracer: (any Tracer)? = nil
    ) {
        self.connection = CoordinatorConnection(configuration: configuration)
        self.trainer = trainer
        self.retry = retry
        self.longPoll = longPoll
        self.logger = logger
        self.tracer = tracer
        self.contact = ContactLog(logger: logger, coordinatorURL: configuration.coordinatorURL)
    }

    /// Participates until graceful shutdown, then leaves the federation.
    ///
    /// If participation ends on its own, with a failure that retrying cannot fix (an untrusted certificate, a
    /// refused enrolment), the error is logged and rethrown so the process exits with the reason.
    public func run() async throws {
        let failure: (any Error)? = await cancelWhenGracefulShutdown {
            do {
                try await participate()
                return nil
            } catch {
                return error
            }
        }
        if let failure, !Task.isShuttingDownGracefully, !Task.isCancelled, !(failure is CancellationError) {
            logger.error("giving up on the federation", metadata: ["error": "\(failure)"])
            throw failure
        }
        try? await connection.leave()
    }

    /// Registers and works on tasks until the calling task is cancelled. Does not leave: a cancelled client
    /// simply falls silent, as a crashed one would.
    public func participate() async throws {
        try await retrying("register") { _ = try await connection.register() }
        while !Task.isCancelled {
            switch try await retrying("poll", { try await connection.poll(wait: longPoll) }) {
            case .task(let task):
                try await handle(task)
            case .idle(let retryAfter?) where retryAfter > .zero:
                // Pace steering: the coordinator spreads idle clients' polls; come back when it said, but never
                // later than a heartbeat interval (a coordinator keeps its hints below it: a longer one, from a
                // proxy or a misconfiguration, would get this client counted as gone).
                let interval = await connection.credentials?.heartbeatInterval ?? retryAfter
                try await Task.sleep(for: min(retryAfter, interval))
            case .idle:
                continue
            }
        }
        throw CancellationError()
    }

    private func handle(_ message: WireProtocol.TaskMessage) async throws {
        let context = TaskContext(
            taskID: message.taskID, round: message.round, kind: message.kind, modelVersion: message.modelVersion,
            config: message.config, deadlineSeconds: message.deadlineSeconds)
        // Without a `traceparent` there is no round trace to join, and no client spans are recorded.
        let taskContext: ServiceContext? = message.traceparent.flatMap { traceparent in
            guard let tracer else { return nil }
            var context = ServiceContext.topLevel
            tracer.extract(["traceparent": traceparent], into: &context, using: HeaderExtractor())
            return context
        }
        let model: ModelWeights
        do {
            model = try await traced("client.download", taskContext) {
                try await retrying("download model") {
                    try await connection.model(version: message.modelVersion, sha256: message.modelSHA256)
                }
            }
        } catch let error as FederationClientError where error.code == .refused {
            // The task is stale (the coordinator rolled back since handing it out) or its model is unusable.
            // Answer it: an unanswered task is handed out again at once, and the client would loop until the
            // task's deadline.
            logger.notice(
                "coordinator refused the task's model; reporting the task failed",
                metadata: [
                    "task_id": "\(message.taskID)", "code": "\(error.apiCode ?? "")", "error": "\(error.message)",
                ])
            try? await connection.reportFailure(
                taskID: message.taskID, message: "model v\(message.modelVersion) unavailable: \(error.apiCode ?? "")")
            return
        }
        let interval = await connection.credentials?.heartbeatInterval ?? .seconds(5)
        let outcome: Result<Answer, any Error> = await withTaskGroup(of: Result<Answer, any Error>?.self) { group in
            group.addTask {
                // Heartbeats tell the coordinator this client is alive while it trains.
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    try? await connection.heartbeat()
                }
                return nil
            }
            group.addTask {
                do {
                    return try await traced("client.\(message.kind.rawValue)", taskContext) {
                        switch message.kind {
                        case .fit: return .success(.fit(try await trainer.fit(model: model, task: context)))
                        case .evaluate:
                            return .success(.evaluate(try await trainer.evaluate(model: model, task: context)))
                        }
                    }
                } catch {
                    return .failure(error)
                }
            }
            var outcome: Result<Answer, any Error> = .failure(CancellationError())
            for await result in group {
                if let result {
                    outcome = result
                    group.cancelAll()
                }
            }
            return outcome
        }
        try Task.checkCancellation()
        do {
            switch outcome {
            case .success(.fit(let result)):
                try await traced("client.upload", taskContext) {
                    try await retrying("submit fit") {
                        try await connection.submitFit(taskID: message.taskID, result: result)
                    }
                }
            case .success(.evaluate(let report)):
                try await traced("client.upload", taskContext) {
                    try await retrying("submit evaluation") {
                        try await connection.submitEvaluation(taskID: message.taskID, report: report)
                    }
                }
            case .failure(let error):
                logger.warning("task failed", metadata: ["task_id": "\(message.taskID)", "error": "\(error)"])
                try await retrying("report failure") {
                    try await connection.reportFailure(taskID: message.taskID, message: "\(error)")
                }
            }
        } catch let error as FederationClientError where error.code == .refused {
            logger.notice(
                "coordinator refused the answer",
                metadata: [
                    "task_id": "\(message.taskID)", "code": "\(error.apiCode ?? "")", "error": "\(error.message)",
                ])
        }
    }

    /// Runs `operation` in a span that is a child of the task's span (when tracing is on and the task had a
    /// `traceparent`); a thrown error marks the span failed.
    private func traced<R: Sendable>(
        _ name: String, _ context: ServiceContext?, _ operation: () async throws -> R
    ) async throws -> R {
        guard let tracer, let context else { return try await operation() }
        let span = tracer.startSpan(name, context: context, ofKind: .internal)
        do {
            let result = try await operation()
            span.end()
            return result
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error, message: "\(error)"))
            span.end()
            throw error
        }
    }

    private enum Answer: Sendable {
        case fit(FitResult)
        case evaluate(EvaluationReport)
    }

    /// Runs `operation`, retrying retryable failures with backoff and re-registering after a 401.
    private func retrying<R: Sendable>(_ what: String, _ operation: () async throws -> R) async throws -> R {
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            do {
                let result = try await operation()
                contact.succeeded()
                return result
            } catch let error as FederationClientError
                where error.isRetryable || (error.code == .unauthenticated && what != "register")
            {
                attempt += 1
                if let maxAttempts = retry.maxAttempts, attempt >= maxAttempts { throw error }
                // A throttled call waits at least as long as the coordinator's Retry-After asks.
                let delay = max(retry.delay(forAttempt: attempt - 1, using: &generator), error.retryAfter ?? .zero)
                contact.failed(what, error, retryIn: delay)
                logger.debug(
                    "retrying", metadata: ["operation": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                try await Task.sleep(for: delay)
                if error.code == .unauthenticated, what != "register" {
                    logger.info("coordinator does not know this client any more; registering again")
                    _ = try? await connection.register()
                }
            }
        }
    }
}

/// Reads propagation headers out of a plain dictionary, for `Tracer.extract`.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
