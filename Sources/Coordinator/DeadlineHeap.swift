/// A binary min-heap of entries by deadline: the earliest is found in O(1) and added or taken in O(log n).
///
/// Lets `LongPollHub` end the polls whose deadline passed without walking every parked poll at each tick.
/// Entries are never removed early: an owner that answered one sooner skips it when it comes due.
struct DeadlineHeap<Deadline: Comparable & Sendable, Entry: Sendable>: Sendable {
    private var items: [(deadline: Deadline, entry: Entry)] = []

    var count: Int { items.count }

    mutating func insert(_ entry: Entry, at deadline: Deadline) {
        items.append((deadline, entry))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].deadline < items[parent].deadline else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if its deadline is at or before `now`.
    mutating func popDue(now: Deadline) -> Entry? {
        guard let first = items.first, first.deadline <= now else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return first.entry }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count, items[right].deadline < items[smallest].deadline { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first.entry
    }

    mutating func removeAll() { items.removeAll() }
}
