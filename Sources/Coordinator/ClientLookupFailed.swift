/// A bearer token the coordinator had to look up in its store (the client was not heard from lately) while
/// the store could not answer. Answered 503 `store_failing` with `Retry-After`: the token may well be valid,
/// and a 401 would tell the client to enrol again as someone new.
public struct ClientLookupFailed: Error, Sendable, CustomStringConvertible {
    /// What the store said.
    public var cause: String
    public var description: String { "the client token could not be checked (\(cause)); retry shortly" }
}
