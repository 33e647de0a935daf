import Logging
import Synchronization

/// Tells the operator of a site when the coordinator cannot be reached or throttles the client, without a
/// line per retry: the first failure of a kind warns at once, a lasting one warns again at most every
/// `repeatInterval` (with how long and how many attempts), and the first success after it says it is over.
final class ContactLog: Sendable {
    enum Trouble: String, Sendable {
        /// No HTTP answer, or a gateway's 502/503/504.
        case unreachable
        /// 429 (or 503 `too_many_connections`): the coordinator asks the client to slow down.
        case throttled
    }

    private struct State {
        var trouble: Trouble?
        var since: ContinuousClock.Instant = .now
        var lastWarning: ContinuousClock.Instant = .now
        var attempts = 0
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let coordinatorURL: String
    let repeatInterval: Duration

    init(logger: Logger, coordinatorURL: String, repeatInterval: Duration = .seconds(30)) {
        self.logger = logger
        self.coordinatorURL = coordinatorURL
        self.repeatInterval = repeatInterval
    }

    /// The kind of trouble a retryable error is, if it is one this log reports.
    static func trouble(of error: FederationClientError) -> Trouble? {
        switch (error.code, error.status) {
        case (.transport, _), (.unavailable, 502?), (.unavailable, 504?): .unreachable
        case (.unavailable, 429?): .throttled
        case (.unavailable, 503?): error.apiCode == "too_many_connections" ? .throttled : .unreachable
        default: nil
        }
    }

    /// A call failed with a retryable error; `retryIn` is the wait before the next attempt.
    func failed(_ operation: String, _ error: FederationClientError, retryIn: Duration) {
        guard let trouble = Self.trouble(of: error) else { return }
        let now = ContinuousClock.now
        let warning: (first: Bool, since: Duration, attempts: Int)? = state.withLock { state in
            if state.trouble != trouble {
                state = State(trouble: trouble, since: now, lastWarning: now, attempts: 1)
                return (true, .zero, 1)
            }
            state.attempts += 1
            guard state.lastWarning.duration(to: now) >= repeatInterval else { return nil }
            state.lastWarning = now
            return (false, state.since.duration(to: now), state.attempts)
        }
        guard let warning else { return }
        var metadata: Logger.Metadata = [
            "coordinator": "\(coordinatorURL)", "operation": "\(operation)", "error": "\(error)",
            "retry_in_seconds": "\(retryIn.seconds)",
        ]
        if !warning.first {
            metadata["for_seconds"] = "\(Int(warning.since.seconds))"
            metadata["attempts"] = "\(warning.attempts)"
        }
        switch trouble {
        case .unreachable:
            logger.warning(
                warning.first ? "coordinator unreachable" : "coordinator still unreachable", metadata: metadata)
        case .throttled:
            logger.warning(
                warning.first ? "coordinator throttles this client" : "coordinator still throttles this client",
                metadata: metadata)
        }
    }

    /// A call succeeded: ends a spell of trouble, saying so.
    func succeeded() {
        let ended: (Trouble, Duration, Int)? = state.withLock { state in
            guard let trouble = state.trouble else { return nil }
            defer { state = State() }
            return (trouble, state.since.duration(to: .now), state.attempts)
        }
        guard let (trouble, duration, attempts) = ended else { return }
        logger.notice(
            trouble == .unreachable ? "coordinator reachable again" : "coordinator no longer throttles this client",
            metadata: [
                "coordinator": "\(coordinatorURL)", "after_seconds": "\(Int(duration.seconds))",
                "failed_attempts": "\(attempts)",
            ])
    }
}
