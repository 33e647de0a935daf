/// Google's selection form for large federations (Bonawitz et al., "Towards Federated Learning at Scale",
/// SysML 2019): a goal count, a selection timeout and a minimum share of the goal.
///
/// A round wants `count` results and asks `selectionTarget = count × overSelection` clients for them, as the
/// paper's server selects 130% of its target. A selection window opens when the coordinator is ready for a
/// round. It closes as soon as `selectionTarget` clients have checked in (are connected): the round samples that
/// many of them. Or it closes when `timeout` has passed: the round then opens with every client checked in if
/// they are at least `minimum`, and is abandoned otherwise (the next window opens at once). Training closes as
/// soon as `count` results are accepted: the over-selected clients still training are released, so stragglers
/// do not set the pace. (A federation smaller than `selectionTarget` waits the timeout every round: give it an
/// `overSelection` of 1 and a goal it can reach.)
///
/// Invariants: `count ≥ 1`, `overSelection` in [1, 10], `minimumShare` in (0, 1], `timeout > 0`, hence
/// `1 ≤ minimum ≤ count ≤ selectionTarget`.
public struct SelectionGoal: Sendable, Equatable {
    /// Accepted fit results that end a round's training phase.
    public var count: Int
    /// Clients asked to train per goal result. Default 1.3 (the paper's 130%).
    public var overSelection: Double
    /// Longest a selection window waits for `count` check-ins. Default 60 s.
    public var timeout: Duration
    /// Share of `count` that must have checked in for a round to open when the window times out. Default 0.8.
    public var minimumShare: Double

    public init(count: Int, overSelection: Double = 1.3, timeout: Duration = .seconds(60), minimumShare: Double = 0.8) {
        precondition(count >= 1, "the goal count must be at least 1")
        precondition(overSelection >= 1 && overSelection <= 10, "over-selection must be in [1, 10]")
        precondition(timeout > .zero, "the selection timeout must be positive")
        precondition(minimumShare > 0 && minimumShare <= 1, "the minimum share must be in (0, 1]")
        self.count = count
        self.overSelection = overSelection
        self.timeout = timeout
        self.minimumShare = minimumShare
    }

    /// The clients a round asks to train when that many are available: `ceil(count × overSelection)`.
    public var selectionTarget: Int { max(count, Int((Double(count) * overSelection).rounded(.up))) }

    /// Check-ins a timed-out window needs to open its round: `ceil(count × minimumShare)`, at least 1.
    public var minimum: Int { max(1, min(count, Int((Double(count) * minimumShare).rounded(.up)))) }

    /// What a selection window does with `checkedIn` clients connected after `waited` since it opened.
    public func decide(checkedIn: Int, waited: Duration) -> Decision {
        if checkedIn >= selectionTarget { return .open(selecting: selectionTarget, outcome: .goalReached) }
        guard waited >= timeout else { return .wait }
        if checkedIn >= minimum { return .open(selecting: checkedIn, outcome: .timedOutWithMinimum) }
        return .abandon
    }

    /// A selection window's next step.
    public enum Decision: Sendable, Equatable {
        /// Keep waiting for check-ins.
        case wait
        /// Open the round, sampling `selecting` of the checked-in clients.
        case open(selecting: Int, outcome: SelectionOutcome)
        /// The window timed out below the minimum: no round; the next window opens.
        case abandon
    }
}

/// How a selection window ended (the `outcome` label of `rondo_selection_windows_total`).
public enum SelectionOutcome: String, Sendable, CaseIterable, Hashable {
    /// The goal count with its over-selection (`selectionTarget`) checked in before the timeout.
    case goalReached = "goal_reached"
    /// The timeout passed with at least the minimum checked in; the round opened with fewer than the goal.
    case timedOutWithMinimum = "timed_out_with_minimum"
    /// The timeout passed below the minimum; no round opened.
    case timedOutBelowMinimum = "timed_out_below_minimum"
}
