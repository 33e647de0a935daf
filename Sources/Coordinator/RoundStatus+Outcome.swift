import FederationCore
import ModelManager

extension RoundStatus {
    /// The one name of how a round ended, used alike by the round record (`rondo rounds`, `/v1/rounds`), the
    /// `outcome` label of `rondo_rounds_total` and the log line (`round committed`, `round rejected`, …): a
    /// guard rejection is `rejected` everywhere, never a "failure" in one place and a "rollback" in another.
    public init<Instant>(finishing outcome: RoundReport<Instant>.Outcome) {
        switch outcome {
        case .committed:
            self = .committed
        case .failed(let failure):
            switch failure.code {
            case .rejectedByGuard: self = .rejected
            case .aborted: self = .aborted
            case .quorumNotReached, .storeFailed, .commitFailed, .aggregationFailed: self = .failed
            }
        }
    }
}
