import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Runs the server's connections in `count` task groups instead of the one group Hummingbird's server keeps.
///
/// Why: in Swift 6.3 a task group keeps its children in a singly linked list, and adding or removing a child
/// walks that list (fixed upstream by swiftlang/swift#87887, after 6.3). With every connection a child of one
/// group, each connection opened or closed walks past every open one: with 10,000 clients parked and a heartbeat
/// connection opened and closed per client every 10 s, that walk was 46% of the coordinator's CPU
/// (`perf`, `rondo bench cohort`). Spread round-robin over `count` groups, each walk covers `1/count` of them.
///
/// It is a `Service` listed before the HTTP server, so graceful shutdown reaches it last: by then the server has
/// stopped accepting and quiesced its connections, and `run` returns once the last one has closed.
final class ConnectionShards: Service, Sendable {
    typealias Connection = @Sendable () async -> Void

    /// Default number of groups: enough that a walk stays short at the connection cap.
    static let defaultCount = 256

    private let queues: [(stream: AsyncStream<Connection>, continuation: AsyncStream<Connection>.Continuation)]
    private let nextShard = Atomic<Int>(0)

    init(count: Int = ConnectionShards.defaultCount) {
        precondition(count > 0, "at least one shard")
        queues = (0..<count).map { _ in AsyncStream.makeStream(of: Connection.self) }
    }

    /// Hands a connection to the next group. Returns false once the shards stopped taking connections.
    func submit(_ connection: @escaping Connection) -> Bool {
        let shard = nextShard.add(1, ordering: .relaxed).newValue % queues.count
        if case .enqueued = queues[shard].continuation.yield(connection) { return true }
        return false
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { shards in
                for queue in queues {
                    shards.addTask {
                        await withDiscardingTaskGroup { connections in
                            for await connection in queue.stream {
                                connections.addTask { await connection() }
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            self.stopTaking()
        }
    }

    /// No new connections; the ones running finish on their own.
    func stopTaking() {
        for queue in queues { queue.continuation.finish() }
    }
}

/// A server child channel whose connections run in `ConnectionShards` instead of the server's own task group:
/// `handle` hands the connection over and returns at once, so the server's group never holds more than the
/// connections being handed over.
struct ShardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let shards: ConnectionShards

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        let inner = inner
        guard shards.submit({ await inner.handle(value: value, logger: logger) }) else {
            // Shutting down: the connection is not served.
            value.channel.close(promise: nil)
            return
        }
    }
}
