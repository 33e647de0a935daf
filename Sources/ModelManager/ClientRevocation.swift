/// What revoking a client changed (`CheckpointStore.revokeClient`).
public enum ClientRevocation: Sendable, Equatable {
    /// No client with that id was ever registered (or its departure was pruned).
    case unknownClient
    /// It was revoked before; nothing changed.
    case alreadyRevoked
    /// Revoked now. `wasEnrolled` is false for a client that had already left: the count of enrolled clients
    /// does not change.
    case revoked(wasEnrolled: Bool)
}
