import FederationCore

/// Where the demo's malicious sites pool their honest updates each round for "a little is enough": each posts
/// its own and waits until every malicious site has posted (or `patience` passed, then uses what is there).
actor CollusionBoard {
    private let members: Int
    private var posted: [Int: [ModelWeights]] = [:]
    private var waiting: [Int: [CheckedContinuation<Void, Never>]] = [:]

    init(members: Int) {
        self.members = members
    }

    /// Posts `update` for `round` and returns the round's pool once it is complete or `patience` passed.
    func pool(round: Int, adding update: ModelWeights, patience: Duration = .seconds(5)) async -> [ModelWeights] {
        posted[round, default: []].append(update)
        if posted[round]!.count >= members {
            for waiter in waiting.removeValue(forKey: round) ?? [] { waiter.resume() }
        } else {
            let timer = Task {
                try? await Task.sleep(for: patience)
                self.release(round)
            }
            await withCheckedContinuation { waiting[round, default: []].append($0) }
            timer.cancel()
        }
        // Older rounds' pools are no longer needed.
        for old in posted.keys where old < round - 1 { posted[old] = nil }
        return posted[round] ?? [update]
    }

    private func release(_ round: Int) {
        for waiter in waiting.removeValue(forKey: round) ?? [] { waiter.resume() }
    }
}
