/// Tasks suspended inside an actor until the actor says the thing they wait for happened.
///
/// The actor checks its condition, and if it does not hold yet, adds a continuation here; whoever changes the
/// state resumes the list. Each continuation is resumed exactly once.
struct WaitList: Sendable {
    private var waiting: [CheckedContinuation<Void, Never>] = []

    var isEmpty: Bool { waiting.isEmpty }
    var count: Int { waiting.count }

    mutating func add(_ continuation: CheckedContinuation<Void, Never>) {
        waiting.append(continuation)
    }

    /// Resumes every waiter.
    mutating func resumeAll() {
        let resumed = waiting
        waiting = []
        for continuation in resumed { continuation.resume() }
    }

    /// Resumes the longest-waiting one.
    /// - Returns: false when nobody was waiting.
    mutating func resumeFirst() -> Bool {
        guard !waiting.isEmpty else { return false }
        waiting.removeFirst().resume()
        return true
    }
}
