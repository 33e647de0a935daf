import FederationCore

/// The long-polls parked on the coordinator, each waiting for its client's next task or its own deadline.
///
/// The hub is the one owner of parked-poll state: the round state machine learns which clients have a poll
/// parked from `parkedClients` at each tick. Every waiter is resumed exactly once: by `wake`, by `expire`,
/// or by `release`.
struct LongPollHub<Value: Sendable>: Sendable {
    private struct Waiter: Sendable {
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Value?, Never>
    }

    private var waiters: [ClientID: [Waiter]] = [:]
    /// Polls parked across all clients.
    private(set) var parkedCount = 0

    /// Polls parked by `client`.
    func parkedCount(for client: ClientID) -> Int { waiters[client]?.count ?? 0 }

    /// Clients with at least one poll parked.
    var parkedClients: Set<ClientID> { Set(waiters.keys) }

    /// Parks a poll until `wake`, `expire` or `release` resumes it.
    mutating func park(
        _ client: ClientID, until deadline: ContinuousClock.Instant, _ continuation: CheckedContinuation<Value?, Never>
    ) {
        waiters[client, default: []].append(Waiter(deadline: deadline, continuation: continuation))
        parkedCount += 1
    }

    /// Answers the client's oldest parked poll with `value()`.
    /// - Returns: false when the client has no poll parked (`value` is then not called).
    @discardableResult
    mutating func wake(_ client: ClientID, with value: () -> Value?) -> Bool {
        guard var list = waiters[client], !list.isEmpty else { return false }
        let waiter = list.removeFirst()
        waiters[client] = list.isEmpty ? nil : list
        parkedCount -= 1
        waiter.continuation.resume(returning: value())
        return true
    }

    /// Answers every poll whose deadline passed with nil.
    /// - Returns: the clients whose polls ended.
    @discardableResult
    mutating func expire(now: ContinuousClock.Instant) -> [ClientID] {
        var ended: [ClientID] = []
        for (client, list) in waiters {
            let (expired, kept) = (list.filter { $0.deadline <= now }, list.filter { $0.deadline > now })
            guard !expired.isEmpty else { continue }
            waiters[client] = kept.isEmpty ? nil : kept
            parkedCount -= expired.count
            for waiter in expired { waiter.continuation.resume(returning: nil) }
            ended.append(client)
        }
        return ended
    }

    /// Answers the client's parked polls (or everyone's, for nil) with nil: it left, was revoked, or the
    /// coordinator stops.
    mutating func release(_ client: ClientID? = nil) {
        let released: [Waiter]
        if let client {
            released = waiters.removeValue(forKey: client) ?? []
        } else {
            released = waiters.values.flatMap { $0 }
            waiters = [:]
        }
        parkedCount -= released.count
        for waiter in released { waiter.continuation.resume(returning: nil) }
    }
}
