import NIOCore
import Synchronization

/// Checks the deadlines of every `ConnectionGuard` on one event loop, four times a second, with one repeated
/// task, instead of one NIO timer per connection.
///
/// Why: a guard re-armed its timers on every request, and cancelling a scheduled NIO task searches the
/// loop's whole timer queue: with 10,000 connections open, the cancels alone were 8% of the coordinator's CPU
/// (`perf`, `rondo bench cohort`). Deadlines are now plain values a sweep compares with the clock; they are
/// honoured within `interval`, which is far finer than any of them (1 s and more).
///
/// Event-loop bound: every method runs on `eventLoop`.
final class ConnectionSweeper: @unchecked Sendable {
    static let interval = TimeAmount.milliseconds(250)
    private static let sweepers = Mutex<[ObjectIdentifier: ConnectionSweeper]>([:])

    private let eventLoop: any EventLoop
    private var guards: [ObjectIdentifier: ConnectionGuard] = [:]
    private var task: RepeatedTask?

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The sweeper of `eventLoop` (one per loop, made on first use).
    static func on(_ eventLoop: any EventLoop) -> ConnectionSweeper {
        sweepers.withLock { sweepers in
            let key = ObjectIdentifier(eventLoop)
            if let sweeper = sweepers[key] { return sweeper }
            let sweeper = ConnectionSweeper(eventLoop: eventLoop)
            sweepers[key] = sweeper
            return sweeper
        }
    }

    /// Starts sweeping `connection` until `remove`.
    func add(_ connection: ConnectionGuard) {
        eventLoop.preconditionInEventLoop()
        guards[ObjectIdentifier(connection)] = connection
        guard task == nil else { return }
        task = eventLoop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { [weak self] _ in
            self?.sweep()
        }
    }

    func remove(_ connection: ConnectionGuard) {
        eventLoop.preconditionInEventLoop()
        guards[ObjectIdentifier(connection)] = nil
        guard guards.isEmpty else { return }
        task?.cancel()
        task = nil
    }

    private func sweep() {
        let now = NIODeadline.now()
        // A copy: a guard that closes its connection removes itself while the sweep runs.
        for connection in Array(guards.values) { connection.sweep(now: now) }
    }
}
