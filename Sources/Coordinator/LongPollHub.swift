import FederationCore

/// Names one parked poll, so its connection closing can abandon exactly that poll.
struct LongPollID: Hashable, Sendable {
    fileprivate let value: UInt64
}

/// The long-polls parked on the coordinator, each waiting for its client's next task or its own deadline.
///
/// The hub is the one owner of parked-poll state: at each tick the round state machine asks `isParked` about
/// the clients that would otherwise go silent. Every waiter is resumed exactly once: by `wake`, by `expire`
/// (its deadline), by `abandonClosed` (its connection closed), or by `release`.
struct LongPollHub<Value: Sendable>: Sendable {
    private struct Waiter: Sendable {
        var id: LongPollID
        var isConnectionOpen: (@Sendable () -> Bool)?
        var continuation: CheckedContinuation<Value?, Never>
    }

    private var waiters: [ClientID: [Waiter]] = [:]
    /// Every parked poll by deadline, so a tick only looks at the polls that are due. Polls answered earlier
    /// stay until their deadline and are skipped then; bounded by the polls parked within `maxLongPoll`.
    private var deadlines = DeadlineHeap<ContinuousClock.Instant, (client: ClientID, id: LongPollID)>()
    /// Polls parked across all clients.
    private(set) var parkedCount = 0
    private var lastID: UInt64 = 0
    /// Polls abandoned because their connection closed, until their waiter asks (`wasAbandoned`). Bounded by
    /// the polls in flight.
    private var abandoned: Set<LongPollID> = []

    /// A fresh id for the next `park`.
    mutating func nextPollID() -> LongPollID {
        lastID += 1
        return LongPollID(value: lastID)
    }

    /// Polls parked by `client`.
    func parkedCount(for client: ClientID) -> Int { waiters[client]?.count ?? 0 }

    /// Clients with at least one poll parked.
    var parkedClients: Set<ClientID> { Set(waiters.keys) }

    /// Whether `client` has a poll parked.
    func isParked(_ client: ClientID) -> Bool { waiters[client] != nil }

    /// Parks a poll until `wake`, `expire` (its deadline), `abandonClosed` (its connection closed) or `release`
    /// resumes it.
    /// - Parameter isConnectionOpen: asked at each `abandonClosed`; a poll whose connection closed is abandoned.
    mutating func park(
        _ client: ClientID, id: LongPollID? = nil, until deadline: ContinuousClock.Instant,
        isConnectionOpen: (@Sendable () -> Bool)? = nil, _ continuation: CheckedContinuation<Value?, Never>
    ) {
        let id = id ?? nextPollID()
        waiters[client, default: []].append(
            Waiter(id: id, isConnectionOpen: isConnectionOpen, continuation: continuation))
        deadlines.insert((client, id), at: deadline)
        parkedCount += 1
    }

    /// True (once) when the poll ended by `abandon`.
    mutating func wasAbandoned(_ id: LongPollID) -> Bool {
        abandoned.remove(id) != nil
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

    /// Answers every poll whose deadline passed with nil; the cost is that of the polls due, not of all parked.
    /// - Returns: the clients whose polls reached their deadline (a sign of life until now).
    @discardableResult
    mutating func expire(now: ContinuousClock.Instant) -> [ClientID] {
        var ended: [ClientID] = []
        while let (client, id) = deadlines.popDue(now: now) {
            guard var list = waiters[client], let index = list.firstIndex(where: { $0.id == id }) else { continue }
            let waiter = list.remove(at: index)
            waiters[client] = list.isEmpty ? nil : list
            parkedCount -= 1
            waiter.continuation.resume(returning: nil)
            if ended.last != client { ended.append(client) }
        }
        return ended
    }

    /// Answers every poll whose connection closed (its client was killed, or hung up) with nil, as abandoned.
    /// Walks every parked poll: the driver calls it a few times a second, not at every tick.
    mutating func abandonClosed() {
        var due: [ClientID] = []
        for (client, list) in waiters where list.contains(where: { $0.isConnectionOpen?() == false }) {
            due.append(client)
        }
        for client in due {
            guard let list = waiters[client] else { continue }
            var kept: [Waiter] = []
            for waiter in list {
                guard waiter.isConnectionOpen?() == false else {
                    kept.append(waiter)
                    continue
                }
                abandoned.insert(waiter.id)
                waiter.continuation.resume(returning: nil)
            }
            waiters[client] = kept.isEmpty ? nil : kept
            parkedCount -= list.count - kept.count
        }
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
            deadlines.removeAll()
        }
        parkedCount -= released.count
        for waiter in released { waiter.continuation.resume(returning: nil) }
    }
}
