import FederationCore

/// A limit that protects the coordinator; the raw value is the `limit` label of `rondo_limit_refusals_total`.
public enum Limit: String, Sendable, CaseIterable {
    /// Clients enrolled (`Limits.maxClients`).
    case clients
    /// Registrations per second across the federation.
    case registerRate = "register_rate"
    /// Refused result and failure submissions per second of one client (accepted ones are not counted).
    case submitRate = "submit_rate"
    /// Long-polls parked across the federation.
    case longPolls = "long_polls"
    /// Long-polls parked by one client.
    case clientLongPolls = "client_long_polls"
    /// Open connections (`Limits.maxConnections`).
    case connections
    /// Request bodies sent slower than `Limits.minimumBodyBytesPerSecond`.
    case slowBody = "slow_body"
    /// Operator rollbacks waiting for the one in progress (`RoundDriver.maxQueuedRollbacks`).
    case queuedRollbacks = "queued_rollbacks"
}

/// A request refused by a configured limit (`CoordinatorConfiguration.Limits`).
public struct LimitError: Error, Sendable, CustomStringConvertible {
    /// Which limit.
    public var limit: Limit
    public var message: String
    /// When a retry may succeed (rate limits), for `Retry-After`.
    public var retryAfter: Duration?
    public var description: String { "\(limit.rawValue): \(message)" }
}

/// Admission checks for the limits on clients and their requests: clients enrolled, parked long-polls, and
/// per-second rates of registrations and of each client's submissions. Time comes in as `now`.
struct Admission: Sendable {
    let limits: CoordinatorConfiguration.Limits
    /// Registrations across the federation.
    private var registrationBucket: TokenBucket<ContinuousClock.Instant>
    /// Each client's submissions.
    private var submissionBuckets: [ClientID: TokenBucket<ContinuousClock.Instant>] = [:]

    init(limits: CoordinatorConfiguration.Limits) {
        self.limits = limits
        let rate = limits.registrationsPerSecond
        registrationBucket = TokenBucket(rate: rate, burst: max(1, rate * 2))
    }

    /// - Parameter registered: clients enrolled now.
    /// - Throws: `LimitError` when the federation is full or registrations come too fast.
    mutating func admitRegistration(registered: Int, now: ContinuousClock.Instant) throws(LimitError) {
        guard registered < limits.maxClients else {
            throw LimitError(
                limit: .clients, message: "the federation already has \(limits.maxClients) clients", retryAfter: nil)
        }
        if let wait = registrationBucket.take(now: now) {
            throw LimitError(limit: .registerRate, message: "too many registrations; retry shortly", retryAfter: wait)
        }
    }

    /// Takes a token for a submission before it is checked; `submissionAccepted` gives it back. So only refused
    /// submissions (invalid, duplicate, late, unknown task) spend `client`'s budget: a healthy client is never
    /// throttled however fast its rounds run, while a flood of bad submissions is, even when sent in parallel.
    /// - Throws: `LimitError` when `client`'s refused submissions used up its rate.
    mutating func admitSubmission(from client: ClientID, now: ContinuousClock.Instant) throws(LimitError) {
        let rate = limits.refusedSubmissionsPerClientPerSecond
        var bucket = submissionBuckets[client] ?? TokenBucket(rate: rate, burst: max(1, rate * 2))
        defer { submissionBuckets[client] = bucket }
        if let wait = bucket.take(now: now) {
            throw LimitError(
                limit: .submitRate, message: "too many refused submissions from this client", retryAfter: wait)
        }
    }

    /// Returns the token `admitSubmission` took: the submission was accepted.
    mutating func submissionAccepted(from client: ClientID) {
        submissionBuckets[client]?.refund()
    }

    /// - Parameters:
    ///   - own: long-polls `client` has parked now.
    ///   - total: long-polls parked across the federation now.
    /// - Throws: `LimitError` when as many long-polls as allowed are already parked, in all or for this client
    ///   (so one client cannot take every slot).
    func admitLongPoll(own: Int, total: Int) throws(LimitError) {
        guard own < limits.maxParkedPollsPerClient else {
            throw LimitError(
                limit: .clientLongPolls, message: "this client already has \(own) long-polls waiting",
                retryAfter: .seconds(1))
        }
        guard total < limits.maxParkedPolls else {
            throw LimitError(
                limit: .longPolls, message: "\(total) long-polls are already waiting; retry shortly",
                retryAfter: .seconds(1))
        }
    }

    /// Drops a departed client's rate state.
    mutating func forget(_ client: ClientID) {
        submissionBuckets[client] = nil
    }
}
