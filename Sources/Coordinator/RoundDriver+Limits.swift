import FederationCore

/// A request refused by a configured limit (`CoordinatorConfiguration.Limits`).
public struct LimitError: Error, Sendable, CustomStringConvertible {
    /// Which limit, as the `limit` label of `rondo_limit_refusals_total`.
    public var limit: String
    /// The API error code.
    public var code: String
    public var message: String
    /// When a retry may succeed (rate limits), for `Retry-After`.
    public var retryAfter: Duration?
    public var description: String { "\(code): \(message)" }
}

/// Admission checks for the limits that protect the coordinator: clients enrolled, parked long-polls, and
/// per-second rates of registrations and of each client's submissions.
extension RoundDriver {
    /// - Throws: `LimitError` when the federation is full or registrations come too fast.
    func admitRegistration() throws(LimitError) {
        let limits = configuration.limits
        guard machine.registeredClientCount < limits.maxClients else {
            throw LimitError(
                limit: "clients", code: "client_limit_reached",
                message: "the federation already has \(limits.maxClients) clients", retryAfter: nil)
        }
        if let wait = registrationBucket.take(now: clock.now) {
            throw LimitError(
                limit: "register_rate", code: "rate_limited", message: "too many registrations; retry shortly",
                retryAfter: wait)
        }
    }

    /// - Throws: `LimitError` when `client` submits results or failures faster than its rate.
    public func admitSubmission(from client: ClientID) throws(LimitError) {
        let rate = configuration.limits.submissionsPerClientPerSecond
        var bucket = submissionBuckets[client] ?? TokenBucket(rate: rate, burst: max(1, rate * 2))
        defer { submissionBuckets[client] = bucket }
        if let wait = bucket.take(now: clock.now) {
            throw LimitError(
                limit: "submit_rate", code: "rate_limited", message: "too many submissions from this client",
                retryAfter: wait)
        }
    }

    /// - Throws: `LimitError` when as many long-polls as allowed are already parked, in all or for this client
    ///   (so one client cannot take every slot).
    func admitLongPoll(for client: ClientID) throws(LimitError) {
        let own = waiters[client]?.count ?? 0
        guard own < configuration.limits.maxParkedPollsPerClient else {
            throw LimitError(
                limit: "client_long_polls", code: "too_many_polls",
                message: "this client already has \(own) long-polls waiting", retryAfter: .seconds(1))
        }
        let parked = waiters.values.reduce(0) { $0 + $1.count }
        guard parked < configuration.limits.maxParkedPolls else {
            throw LimitError(
                limit: "long_polls", code: "too_many_polls",
                message: "\(parked) long-polls are already waiting; retry shortly", retryAfter: .seconds(1))
        }
    }
}
