import Hummingbird
import NIOCore

/// The request context of every coordinator route: Hummingbird's basic context plus a way to ask whether the
/// request's connection is still open, so a long-poll parked for a client whose connection closed (a killed
/// process) is abandoned at the next tick instead of counting as a sign of life until its own deadline.
public struct CoordinatorRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// False once the request's connection closed (NIO's `isActive`, safe from any thread).
    public let isConnectionOpen: @Sendable () -> Bool

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let channel = source.channel
        isConnectionOpen = { channel.isActive }
    }
}
