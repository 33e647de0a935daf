import ModelManager

/// Group commit for registrations (see `EnrolmentQueue`).
extension RoundDriver {
    /// Writes a registration in the next group commit and returns once it is committed.
    /// - Throws: `EnrolmentNotStored` when the store refused it; nothing of it was written.
    func enrol(_ enrolment: ClientEnrolment) async throws(EnrolmentNotStored) {
        let result = await withCheckedContinuation { continuation in
            if enrolments.enqueue(enrolment, continuation) {
                _Concurrency.Task { await commitEnrolments() }
            }
        }
        try result.get()
    }

    /// Commits queued registrations batch by batch until none is left. A batch the store refuses is retried
    /// one registration at a time, so one bad row fails only itself.
    private func commitEnrolments() async {
        while let batch = enrolments.nextBatch() {
            enrolmentCommits += 1
            do {
                enrolledClients += try await store.clientsEnrolled(batch.map(\.enrolment))
                for entry in batch { entry.waiter.resume(returning: .success(())) }
                continue
            } catch {
                guard batch.count > 1 else {
                    logger.error("storing a registration failed", metadata: ["error": "\(error)"])
                    batch[0].waiter.resume(returning: .failure(EnrolmentNotStored(cause: "\(error)")))
                    continue
                }
            }
            for entry in batch {
                do {
                    enrolledClients += try await store.clientsEnrolled([entry.enrolment])
                    entry.waiter.resume(returning: .success(()))
                } catch {
                    logger.error("storing a registration failed", metadata: ["error": "\(error)"])
                    entry.waiter.resume(returning: .failure(EnrolmentNotStored(cause: "\(error)")))
                }
            }
        }
    }
}
