/// How a coordinator came to run on a store another run used before: the reason its interrupted rounds are
/// aborted with.
public enum Takeover: String, Sendable {
    /// The same coordinator started again (after a crash or a stop).
    case restart = "coordinator restart"
    /// A standby took the leader lease from a coordinator that died or was cut off.
    case leaderChange = "leader change"
}
