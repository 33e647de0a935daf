import FederationCore
import Foundation
import ModelManager

/// The round history the driver writes to the store, and retries when the store refuses.
extension RoundDriver {
    /// Writes a finished round's history row; when the store refuses, keeps it to retry on a later tick.
    func recordRound(_ record: RoundRecord) async {
        unrecordedRounds.append(record)
        await recordUnrecordedRounds()
    }

    /// Retries the history rows the store refused earlier, oldest first, stopping at the first failure.
    /// Single-flight: the actor may re-enter while a write is awaited, and only this loop removes entries.
    func recordUnrecordedRounds() async {
        guard !recordingRounds else { return }
        recordingRounds = true
        defer { recordingRounds = false }
        while let record = unrecordedRounds.first {
            do {
                try await store.roundFinished(record)
                unrecordedRounds.removeFirst()
                storeFailing = false
            } catch let error as any DatabaseFailure {
                storeFailing = true
                if unrecordedRounds.count == 1 {
                    logger.error(
                        "recording the round's outcome failed; retrying",
                        metadata: ["round": "\(record.round)", "error": "\(error)"])
                }
                // Keep a bounded backlog: a store down for days must not grow memory without end.
                if unrecordedRounds.count > 1000 { unrecordedRounds.removeFirst(unrecordedRounds.count - 1000) }
                return
            } catch {
                // Not the database failing: this record cannot be written (it would fail on every retry).
                logger.error(
                    "a round's history row cannot be recorded; dropping it",
                    metadata: ["round": "\(record.round)", "error": "\(error)"])
                unrecordedRounds.removeFirst()
            }
        }
    }

    /// While store writes fail, tries a small real write each second, so readiness comes back as soon as the
    /// store works again even when no round is running to prove it (a not-ready coordinator gets no traffic).
    func probeFailingStore() async {
        guard storeFailing else { return }
        do {
            try await store.probeWrite()
            storeFailing = false
            logger.notice("the checkpoint store accepts writes again")
        } catch {
            logger.debug("the checkpoint store still refuses writes", metadata: ["error": "\(error)"])
        }
    }

    /// Writes history the round itself does not depend on (round rows, client rows); a failure is logged, not
    /// fatal to the round.
    func persist(_ what: String, _ write: (CheckpointStore) async throws -> Void) async {
        do {
            try await write(store)
        } catch {
            logger.error("persisting \(what) failed", metadata: ["error": "\(error)"])
        }
    }

    static func metrics(
        _ evaluation: EvaluationSummary?, _ fitMetrics: [String: Double], _ examples: Int, _ clients: Int
    ) -> CheckpointMetrics {
        CheckpointMetrics(
            evalLoss: evaluation?.loss, evalMetrics: evaluation?.metrics ?? [:], evalClients: evaluation?.clients,
            fitMetrics: fitMetrics, clients: clients, examples: examples)
    }

    static func record(_ report: Report, startedAt: Double?) -> RoundRecord {
        let now = Date().timeIntervalSince1970
        let status = RoundStatus(finishing: report.outcome)
        var reason: String?
        var detail: String?
        switch report.outcome {
        case .committed:
            break
        case .failed(let failure):
            reason = failure.code.rawValue
            detail = failure.message
        }
        return RoundRecord(
            round: report.round, status: status, startedAt: startedAt ?? now - report.duration.seconds, finishedAt: now,
            baseVersion: report.baseVersion, resultVersion: report.resultVersion, selected: report.selected,
            answered: report.accepted, dropped: report.fitDropoutCount, rejected: report.rejected.values.reduce(0, +),
            reason: reason, detail: detail, evalLoss: report.evaluation?.loss,
            evalMetrics: report.evaluation?.metrics ?? [:])
    }
}
