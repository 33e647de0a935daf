import ModelManager

/// A registration that could not be written to the store: it was not acknowledged, and its token never worked.
/// Answered 503 `store_failing` with `Retry-After`.
public struct EnrolmentNotStored: Error, Sendable, CustomStringConvertible {
    /// What the store said.
    public var cause: String
    public var description: String { "the registration could not be stored (\(cause)); retry shortly" }
}

/// Registrations waiting for their store write, committed in groups: the ones that arrive while a batch
/// commits go together in the next transaction, so a burst of N registrations costs a few commits instead of
/// N, and none is answered before its own batch is committed.
///
/// The queue only holds state; `RoundDriver` runs the commits. Invariant: `committing` is true exactly while a
/// commit loop runs, and every waiter is resumed exactly once, by the batch it was written in.
struct EnrolmentQueue: Sendable {
    typealias Waiter = CheckedContinuation<Result<Void, EnrolmentNotStored>, Never>

    private var waiting: [(enrolment: ClientEnrolment, waiter: Waiter)] = []
    /// True while a commit loop is writing batches.
    private(set) var committing = false

    /// Queues a registration. Returns true when no commit loop runs: the caller must start one.
    mutating func enqueue(_ enrolment: ClientEnrolment, _ waiter: Waiter) -> Bool {
        waiting.append((enrolment, waiter))
        guard !committing else { return false }
        committing = true
        return true
    }

    /// Everything queued so far, as the next batch; nil (and the loop ends) when nothing is waiting.
    mutating func nextBatch() -> [(enrolment: ClientEnrolment, waiter: Waiter)]? {
        guard !waiting.isEmpty else {
            committing = false
            return nil
        }
        defer { waiting = [] }
        return waiting
    }
}
