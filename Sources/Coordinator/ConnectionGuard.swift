import FederationCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// How `ConnectionGuard` protects connections, taken from `CoordinatorConfiguration.Limits`.
struct ConnectionPolicy: Sendable {
    /// Most connections open at once (`Limits.maxConnections`).
    var maxConnections: Int
    /// Time a new connection may take to send a complete request head; trickling header bytes does not extend
    /// it (`Limits.idleTimeout`).
    var requestHeadTimeout: Duration
    /// Time a kept-alive connection may stay silent after an answer before its next request head is complete
    /// (`Limits.keepAliveTimeout`, capped by `requestHeadTimeout`).
    var keepAliveTimeout: Duration
    /// Slowest accepted request body, measured over `bodyRateWindow` (`Limits.minimumBodyBytesPerSecond`).
    var minimumBodyBytesPerSecond: Int
    /// The window the body rate is measured over (`Limits.bodyRateWindow`).
    var bodyRateWindow: Duration

    init(limits: CoordinatorConfiguration.Limits) {
        maxConnections = limits.maxConnections
        requestHeadTimeout = limits.idleTimeout
        keepAliveTimeout = min(limits.keepAliveTimeout, limits.idleTimeout)
        minimumBodyBytesPerSecond = limits.minimumBodyBytesPerSecond
        bodyRateWindow = limits.bodyRateWindow
    }
}

/// Open connections across the server, shared by every `ConnectionGuard`.
public final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)

    public init() {}

    /// Connections counted as open now.
    public var value: Int { open.load(ordering: .relaxed) }

    func opened() -> Int { open.add(1, ordering: .relaxed).newValue }

    func closed() { open.subtract(1, ordering: .relaxed) }
}

/// A request the guard cut off (a body too slow, or malformed HTTP): surfaced to the request's body reader, so a
/// truncated body is never taken for a complete one.
struct ConnectionGuardError: Error, Sendable {}

/// A channel handler placed after HTTP decoding that enforces `ConnectionPolicy` on one connection:
///
/// - the connection count: over the cap, a connection gets a short deadline for its first request, which is
///   answered 503 `too_many_connections` and closed (health and metrics requests are still served, so probes
///   do not restart a busy coordinator);
/// - a deadline for each request head, which trickled header bytes cannot extend, and a shorter one for the next
///   request on a kept-alive connection, so connections a client uses now and then do not stay open between uses;
/// - a minimum rate for request bodies, judged only while the server is waiting for input;
/// - an answer sent before its request body was read (a refusal: 401, 413, …) is sent with
///   `Connection: close`, then the output side is closed and the rest of the body is read and discarded for a
///   moment before the connection closes, so the client can read the answer instead of a reset, and a
///   refused upload cannot keep the connection;
/// - a malformed request or an oversized header gets a JSON error (400 / 431) instead of a bare status.
///
/// Requests on one connection are counted, so a pipelined request is never mistaken for the one being
/// answered. Deadlines are values checked by the event loop's `ConnectionSweeper`, not one timer each.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Paths an over-the-cap connection is still served: probes and scrapes must not fail because clients
    /// filled the connection table.
    static let alwaysServed: Set<String> = ["/healthz", "/readyz", "/metrics"]
    /// How long an over-the-cap connection may take to send its request.
    static let overLimitHeadTimeout = TimeAmount.seconds(1)
    /// How long the rest of a refused request body is read and discarded before the connection closes.
    static let lingerTimeout = TimeAmount.seconds(2)

    private let policy: ConnectionPolicy
    private let counter: ConnectionCounter
    private let refused: @Sendable (Limit) -> Void
    private var counted = false
    private var overLimit = false
    private var closed = false
    /// Requests whose head arrived, and answers completed; the one being answered is number `answered + 1`.
    private var received = 0
    private var answered = 0
    /// True from a request head until its `.end`: the body is still being read.
    private var readingBody = false
    /// True while an answer is being written (head sent, `.end` not yet).
    private var answering = false
    /// True while a task long-poll (`GET …/tasks/next`) on this connection waits for its answer.
    private var longPollWaiting = false
    /// Set when the connection must close once the answer in progress is complete.
    private var closeAfterAnswer = false
    /// True after the output side was closed while the rest of a refused body is discarded.
    private var lingering = false
    private var bodyBytesInWindow = 0
    /// True while the server has asked for more input and none arrived yet. A slow body is judged only then:
    /// when the server itself stopped reading (backpressure while a handler is busy), the client is not slow.
    private var awaitingInput = false
    /// When the connection closes unless a complete request head arrived (nil while a request is in hand).
    private var headDeadline: NIODeadline?
    /// When the request body's current rate window ends (nil when no body is being read).
    private var rateWindowEnd: NIODeadline?
    /// The connection's context while it is open, for the sweeper's deadlines.
    private var context: ChannelHandlerContext?
    private var sweeper: ConnectionSweeper?

    init(policy: ConnectionPolicy, counter: ConnectionCounter, refused: @escaping @Sendable (Limit) -> Void) {
        self.policy = policy
        self.counter = counter
        self.refused = refused
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { opened(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        opened(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func opened(context: ChannelHandlerContext) {
        guard !counted else { return }
        counted = true
        if counter.opened() > policy.maxConnections {
            overLimit = true
            refused(.connections)
        }
        self.context = context
        let sweeper = ConnectionSweeper.on(context.eventLoop)
        sweeper.add(self)
        self.sweeper = sweeper
        armHeadTimer(context: context)
    }

    private func release() {
        if counted { counter.closed() }
        counted = false
        closed = true
        headDeadline = nil
        rateWindowEnd = nil
        context = nil
        sweeper?.remove(self)
        sweeper = nil
    }

    // MARK: Inbound

    func read(context: ChannelHandlerContext) {
        awaitingInput = true
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        awaitingInput = false
        guard !lingering else { return }  // the rest of a refused body: discarded
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            headDeadline = nil
            received += 1
            longPollWaiting = head.method == .get && head.path?.contains("/tasks/next") == true
            if overLimit {
                guard let path = head.path?.split(separator: "?").first, Self.alwaysServed.contains(String(path)) else {
                    answerAndClose(
                        context: context, status: .serviceUnavailable, code: .tooManyConnections,
                        message: "the coordinator has \(policy.maxConnections) connections open; retry shortly",
                        retryAfter: 1)
                    return
                }
                closeAfterAnswer = true
            }
            readingBody = true
            bodyBytesInWindow = 0
            armRateTimer(context: context)
        case .body(let buffer):
            bodyBytesInWindow += buffer.readableBytes
        case .end:
            readingBody = false
            rateWindowEnd = nil
        }
        context.fireChannelRead(data)
    }

    /// A client whose input ends while its long-poll waits has gone: a killed process's socket closes, and
    /// Hummingbird keeps half-closed connections open. Closing it lets the coordinator abandon the poll at its
    /// next tick instead of counting the dead client as alive until the poll's deadline. (HTTP clients do not
    /// half-close while they wait for an answer; other requests keep the half-close behaviour.)
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, longPollWaiting {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !answering else {
            // An answer is being written: do not interleave another; close once it is complete.
            closeAfterAnswer = true
            context.fireErrorCaught(ConnectionGuardError())
            return
        }
        if parserError == .headerOverflow {
            answerAndClose(
                context: context, status: .init(code: 431), code: .headersTooLarge,
                message: "the request's header fields exceed the server's limit")
        } else {
            answerAndClose(
                context: context, status: .badRequest, code: .malformedRequest,
                message: "the request is not valid HTTP/1.1 (\(parserError))")
        }
        context.fireErrorCaught(ConnectionGuardError())
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            answering = true
            // Answering the request whose body is still arriving: this answer ends the connection.
            if readingBody && received == answered + 1 { closeAfterAnswer = true }
            // A handler that answers `Connection: close` ends the connection (Hummingbird itself only honours
            // the request's).
            if head.headerFields[.connection]?.lowercased() == "close" { closeAfterAnswer = true }
            if closeAfterAnswer { head.headerFields[.connection] = "close" }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            answering = false
            longPollWaiting = false
            answered += 1
            guard closeAfterAnswer else {
                context.write(data, promise: promise)
                if received == answered { armHeadTimer(context: context, keepingAlive: true) }
                return
            }
            rateWindowEnd = nil
            let bodyUnread = readingBody
            context.writeAndFlush(data).assumeIsolated().whenComplete { result in
                promise?.completeWith(result)
                self.finishAfterAnswer(context: context, bodyUnread: bodyUnread)
            }
        }
    }

    /// Closes after an answer that ends the connection: at once, or, when the request body is still arriving,
    /// after closing the output side and discarding the rest for a moment (so the client reads the answer
    /// rather than a reset).
    private func finishAfterAnswer(context: ChannelHandlerContext, bodyUnread: Bool) {
        guard bodyUnread, !closed else {
            context.close(promise: nil)
            return
        }
        lingering = true
        readingBody = false
        context.close(mode: .output, promise: nil)
        context.read()
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTimeout) { context.close(promise: nil) }
        // The handler that answered may still be reading the body: end it with an error, not a clean end.
        context.fireErrorCaught(ConnectionGuardError())
    }

    // MARK: Timers

    /// Closes the connection unless a complete request head arrives in time: `requestHeadTimeout` for a new
    /// connection, `keepAliveTimeout` after an answer (so idle kept-alive connections do not pile up).
    private func armHeadTimer(context: ChannelHandlerContext, keepingAlive: Bool = false) {
        guard !closed else { return }
        let timeout =
            overLimit
            ? Self.overLimitHeadTimeout
            : TimeAmount(keepingAlive ? policy.keepAliveTimeout : policy.requestHeadTimeout)
        headDeadline = .now() + timeout
    }

    private func armRateTimer(context: ChannelHandlerContext) {
        guard !closed else { return }
        rateWindowEnd = .now() + TimeAmount(policy.bodyRateWindow)
    }

    /// The sweeper's check (on the event loop, every `ConnectionSweeper.interval`): closes a connection whose
    /// request head is late, and judges the body rate at the end of each window.
    func sweep(now: NIODeadline) {
        guard let context, !closed else { return }
        if let deadline = headDeadline, deadline <= now {
            headDeadline = nil
            context.close(promise: nil)
            return
        }
        guard let windowEnd = rateWindowEnd, windowEnd <= now else { return }
        rateWindowEnd = nil
        guard readingBody else { return }
        let window = policy.bodyRateWindow
        let needed = Int(Double(policy.minimumBodyBytesPerSecond) * window.seconds)
        guard bodyBytesInWindow < needed, awaitingInput else {
            bodyBytesInWindow = 0
            armRateTimer(context: context)
            return
        }
        refused(.slowBody)
        readingBody = false
        if answering || received > answered + 1 {
            context.close(promise: nil)
        } else {
            answerAndClose(
                context: context, status: .requestTimeout, code: .bodyTooSlow,
                message: "the request body arrived slower than \(policy.minimumBodyBytesPerSecond) bytes per second")
        }
        context.fireErrorCaught(ConnectionGuardError())
    }

    /// Writes a JSON error answer with `Connection: close`, then closes the connection.
    private func answerAndClose(
        context: ChannelHandlerContext, status: HTTPResponse.Status, code: APIError.Code, message: String,
        retryAfter: Int? = nil
    ) {
        guard !closed, !lingering else { return }
        let body =
            (try? JSONEncoder().encode(WireProtocol.ErrorMessage(code: code.rawValue, message: message))) ?? Data()
        var headers: HTTPFields = [
            .contentType: "application/json", .connection: "close", .contentLength: String(body.count),
        ]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        headDeadline = nil
        rateWindowEnd = nil
        lingering = true  // nothing more is read or answered on this connection
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
