import ArgumentParser
import FederationCore

/// `rondo serve`'s goal-count selection and pace-steering flags.
struct SelectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Goal-count selection: a round wants this many results; it opens once --over-selection times as many "
                + "clients are connected (or at --selection-timeout with the minimum share), asks that many to "
                + "train, and closes training at this many results. Replaces --fraction-fit/--min-fit-clients/"
                + "--min-available-clients (default: off)."
        ))
    var goalCount: Int?
    @Option(help: "Clients asked to train per goal result, in [1, 10] (with --goal-count).")
    var overSelection = 1.3
    @Option(help: "Seconds a selection window waits for the goal count (with --goal-count).")
    var selectionTimeout = 60.0
    @Option(
        help: "Share (0-1] of the goal count a timed-out selection window needs to open its round (with --goal-count).")
    var selectionMinimumShare = 0.8
    @Option(
        help: ArgumentHelp(
            "Pace steering: re-polls per second idle clients are spread to; each poll answered without a task "
                + "carries Retry-After (0 turns the hints off)."))
    var pollRate = 200.0

    func validate() throws {
        guard pollRate >= 0, pollRate.isFinite else { throw ValidationError("--poll-rate must be 0 or positive") }
        guard let goalCount else { return }
        guard goalCount >= 1, goalCount <= 1_000_000 else {
            throw ValidationError("--goal-count must be between 1 and 1000000")
        }
        guard overSelection >= 1, overSelection <= 10 else {
            throw ValidationError("--over-selection must be between 1 and 10")
        }
        guard selectionTimeout.isFinite, selectionTimeout >= 0.1, selectionTimeout <= 86_400 else {
            throw ValidationError("--selection-timeout must be between 0.1 and 86400 seconds")
        }
        guard selectionMinimumShare > 0, selectionMinimumShare <= 1 else {
            throw ValidationError("--selection-minimum-share must be in (0, 1]")
        }
    }

    /// The goal the flags describe, nil without `--goal-count`.
    var goal: SelectionGoal? {
        goalCount.map {
            SelectionGoal(
                count: $0, overSelection: overSelection, timeout: .seconds(selectionTimeout),
                minimumShare: selectionMinimumShare)
        }
    }

    /// The poll rate for `CoordinatorConfiguration.pollRate`: nil when hints are off.
    var resolvedPollRate: Double? { pollRate > 0 ? pollRate : nil }
}
