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
    /// Time a connection may take to send a complete request head, counted from its opening or from the end
    /// of the previous response; trickling header bytes does not extend it (`Limits.idleTimeout`).
    var requestHeadTimeout: Duration
    /// Slowest accepted request body, measured over `bodyRateWindow` (`Limits.minimumBodyBytesPerSecond`).
    var minimumBodyBytesPerSecond: Int
    /// The window the body rate is measured over (`Limits.bodyRateWindow`).
    var bodyRateWindow: Duration

    init(limits: CoordinatorConfiguration.Limits) {
        maxConnections = limits.maxConnections
        requestHeadTimeout = limits.idleTimeout
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

/// A channel handler placed after HTTP decoding that enforces `ConnectionPolicy` on one connection:
///
/// - the connection count (over the cap: 503 JSON, then close);
/// - a deadline for each request head, which trickled header bytes cannot extend;
/// - a minimum rate for request bodies;
/// - an answer sent before its request body was read closes the connection, so a refused upload (401, 413,
///   …) cannot keep it open by sending the rest slowly;
/// - a malformed request or an oversized header gets a JSON error (400 / 431) instead of a bare status.
///
/// Timers run on the channel's event loop, so tests drive them with `EmbeddedEventLoop.advanceTime(by:)`.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Why the guard refused or closed a connection; `limit` is the `rondo_limit_refusals_total` label.
    enum Refusal: String, Sendable {
        case connections
        case slowBody = "slow_body"
    }

    private let policy: ConnectionPolicy
    private let counter: ConnectionCounter
    private let refused: @Sendable (Refusal) -> Void
    private var counted = false
    private var overLimit = false
    /// True from a request head until its `.end`: the body is still being read.
    private var readingBody = false
    private var responseStarted = false
    private var bodyBytesInWindow = 0
    /// True while the server has asked for more input and none arrived yet. A slow body is judged only then:
    /// when the server itself stopped reading (backpressure while a handler is busy), the client is not slow.
    private var awaitingInput = false
    private var headTimer: Scheduled<Void>?
    private var rateTimer: Scheduled<Void>?

    init(policy: ConnectionPolicy, counter: ConnectionCounter, refused: @escaping @Sendable (Refusal) -> Void) {
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
        armHeadTimer(context: context)
    }

    private func release() {
        if counted { counter.closed() }
        counted = false
        headTimer?.cancel()
        rateTimer?.cancel()
    }

    // MARK: Inbound

    func read(context: ChannelHandlerContext) {
        awaitingInput = true
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        awaitingInput = false
        let part = unwrapInboundIn(data)
        if overLimit {
            if case .head = part {
                answerAndClose(
                    context: context, status: .serviceUnavailable, code: "too_many_connections",
                    message: "the coordinator has \(policy.maxConnections) connections open; retry shortly",
                    retryAfter: 1)
            }
            return
        }
        switch part {
        case .head:
            headTimer?.cancel()
            readingBody = true
            responseStarted = false
            bodyBytesInWindow = 0
            armRateTimer(context: context)
        case .body(let buffer):
            bodyBytesInWindow += buffer.readableBytes
        case .end:
            readingBody = false
            rateTimer?.cancel()
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if parserError == .headerOverflow {
            answerAndClose(
                context: context, status: .init(code: 431), code: "headers_too_large",
                message: "the request's header fields exceed the server's limit")
        } else {
            answerAndClose(
                context: context, status: .badRequest, code: "malformed_request",
                message: "the request is not valid HTTP/1.1 (\(parserError))")
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head:
            responseStarted = true
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            if readingBody {
                // Answered before the body arrived (a refusal): do not wait for the rest of it.
                rateTimer?.cancel()
                context.writeAndFlush(data).whenComplete { result in
                    promise?.completeWith(result)
                    context.close(promise: nil)
                }
            } else {
                context.write(data, promise: promise)
                armHeadTimer(context: context)
            }
        }
    }

    // MARK: Timers

    private func armHeadTimer(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = context.eventLoop.scheduleTask(in: .init(policy.requestHeadTimeout)) {
            context.close(promise: nil)
        }
    }

    private func armRateTimer(context: ChannelHandlerContext) {
        rateTimer?.cancel()
        let window = policy.bodyRateWindow
        rateTimer = context.eventLoop.scheduleTask(in: .init(window)) { [self] in
            guard readingBody else { return }
            let needed = Int(Double(policy.minimumBodyBytesPerSecond) * window.seconds)
            guard bodyBytesInWindow < needed, awaitingInput else {
                bodyBytesInWindow = 0
                armRateTimer(context: context)
                return
            }
            refused(.slowBody)
            readingBody = false
            if responseStarted {
                context.close(promise: nil)
            } else {
                answerAndClose(
                    context: context, status: .requestTimeout, code: "body_too_slow",
                    message: "the request body arrived slower than \(policy.minimumBodyBytesPerSecond) bytes per second"
                )
            }
        }
    }

    /// Writes a JSON error answer with `Connection: close`, then closes the connection.
    private func answerAndClose(
        context: ChannelHandlerContext, status: HTTPResponse.Status, code: String, message: String,
        retryAfter: Int? = nil
    ) {
        let body = (try? JSONEncoder().encode(WireProtocol.ErrorMessage(code: code, message: message))) ?? Data()
        var headers: HTTPFields = [
            .contentType: "application/json", .connection: "close", .contentLength: String(body.count),
        ]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        headTimer?.cancel()
        rateTimer?.cancel()
        responseStarted = true
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
