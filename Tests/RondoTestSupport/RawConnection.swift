import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain TCP connection to 127.0.0.1 for tests that must control the bytes on the wire: chunked or trickled
/// bodies, oversized headers, connections that stay open.
/// Sending from one task while another receives is fine: the socket calls are thread-safe.
public final class RawConnection: @unchecked Sendable {
    private let descriptor: Int32

    /// Connects to `127.0.0.1:port`; reads time out after `receiveTimeout`.
    public init(port: Int, receiveTimeout: Duration = .seconds(10)) throws {
        descriptor = try Self.connectedSocket(port: port)
        let (seconds, attoseconds) = receiveTimeout.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(descriptor) }

    /// A socket connected to `127.0.0.1:port`; the caller closes it.
    static func connectedSocket(port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawConnectionError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw RawConnectionError("connect() failed")
        }
        return descriptor
    }

    /// Shuts the connection down in both directions now (the descriptor is released at deinit).
    public func close() {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Sends `text` as UTF-8; false when the peer closed the connection.
    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    /// What the next read brings: data, the peer's close (`closed`), or nothing within the timeout.
    public enum Received: Equatable {
        case data([UInt8])
        case closed
        case timedOut
    }

    public func receive() -> Received {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count > 0 { return .data(Array(buffer.prefix(count))) }
        if count == 0 { return .closed }
        return errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .closed
    }

    /// Reads until the peer closes the connection or a read times out.
    /// - Returns: everything read, and whether the connection was closed by the peer.
    public func readUntilClosed() async -> (text: String, closed: Bool) {
        await offThePool { self.blockingReadUntilClosed() }
    }

    /// Reads one response head and as much body as `Content-Length` says; nil when the connection closed or a
    /// read timed out first.
    public func readResponse() async -> (status: Int, text: String)? {
        await offThePool { self.blockingReadResponse() }
    }

    /// Runs a blocking socket call on a Dispatch thread: blocking one of Swift's few cooperative threads would
    /// starve the coordinator under test, which answers on the same pool.
    private func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }

    private func blockingReadUntilClosed() -> (text: String, closed: Bool) {
        var bytes: [UInt8] = []
        while true {
            switch receive() {
            case .data(let chunk): bytes += chunk
            case .closed: return (String(decoding: bytes, as: UTF8.self), true)
            case .timedOut: return (String(decoding: bytes, as: UTF8.self), false)
            }
        }
    }

    private func blockingReadResponse() -> (status: Int, text: String)? {
        var bytes: [UInt8] = []
        while true {
            let text = String(decoding: bytes, as: UTF8.self)
            if let headEnd = text.range(of: "\r\n\r\n") {
                let head = text[..<headEnd.lowerBound]
                let length =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if text[headEnd.upperBound...].utf8.count >= length {
                    let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                    return (status, text)
                }
            }
            guard case .data(let chunk) = receive() else { return nil }
            bytes += chunk
        }
    }
}

public struct RawConnectionError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
