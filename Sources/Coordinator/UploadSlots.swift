/// Bounds the uploads being received and folded at once (`Limits.maxConcurrentUploads`).
///
/// An upload waiting here has not read its body yet, so its client is held back by TCP backpressure: the
/// coordinator never buffers an upload it is not ready to check. Slots are handed over in arrival order.
actor UploadSlots {
    let capacity: Int
    private var inUse = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(capacity: Int) {
        precondition(capacity > 0, "at least one upload slot")
        self.capacity = capacity
    }

    /// Waits for a free slot and takes it; every `acquire` needs one `release`.
    func acquire() async {
        if inUse < capacity {
            inUse += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Frees a slot, handing it straight to the longest waiter if there is one.
    func release() {
        if waiters.isEmpty {
            inUse -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Slots taken now, and requests waiting for one.
    var usage: (inUse: Int, waiting: Int) { (inUse, waiters.count) }
}
