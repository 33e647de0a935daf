import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy on 127.0.0.1 in front of a real coordinator that cuts the first model download halfway:
/// once a `GET /v1/models/` request passes, it forwards `cutAfter` bytes of the answer and closes the
/// connection. Everything else passes untouched. It records each request head, so a test can check what a
/// resuming client asked for.
public final class CuttingProxy: Sendable {
    public let port: Int
    private let listener: Int32
    private let upstreamPort: Int
    private let cutAfter: Int
    private let state = Mutex<(armed: Bool, heads: [String])>((true, []))

    public init(upstreamPort: Int, cutAfter: Int) throws {
        self.upstreamPort = upstreamPort
        self.cutAfter = cutAfter
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw RawConnectionError("proxy bind/listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// The request heads that passed, in order (request line and headers).
    public var requestHeads: [String] { state.withLock { $0.heads } }

    /// Stops accepting connections.
    public func stop() { shutdown(listener, Int32(SHUT_RDWR)) }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let upstream = try? RawConnection.connectedSocket(port: upstreamPort) else {
                close(client)
                continue
            }
            let cut = Cut()
            Thread { [self] in pumpRequests(from: client, to: upstream, cut: cut) }.start()
            Thread { [self] in pumpAnswers(from: upstream, to: client, cut: cut) }.start()
        }
    }

    private func pumpRequests(from client: Int32, to upstream: Int32, cut: Cut) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { break }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            if let head = text.components(separatedBy: "\r\n\r\n").first,
                head.hasPrefix("GET ") || head.hasPrefix("POST ")
            {
                let armed = state.withLock { state in
                    state.heads.append(head)
                    defer { if head.hasPrefix("GET /v1/models/") { state.armed = false } }
                    return state.armed && head.hasPrefix("GET /v1/models/")
                }
                if armed { cut.remaining.withLock { $0 = cutAfter } }
            }
            guard Self.writeAll(buffer, count, to: upstream) else { break }
        }
        shutdown(upstream, Int32(SHUT_WR))
    }

    private func pumpAnswers(from upstream: Int32, to client: Int32, cut: Cut) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(upstream, &buffer, buffer.count)
            guard count > 0 else { break }
            let allowed = cut.remaining.withLock { remaining -> Int in
                guard let left = remaining else { return count }
                remaining = left - min(left, count)
                return min(left, count)
            }
            guard Self.writeAll(buffer, allowed, to: client), allowed == count else { break }
        }
        // shutdown first: a plain close would not end the connection while the other pump is blocked reading it.
        shutdown(client, Int32(SHUT_RDWR))
        shutdown(upstream, Int32(SHUT_RDWR))
        close(client)
        close(upstream)
    }

    private static func writeAll(_ buffer: [UInt8], _ count: Int, to descriptor: Int32) -> Bool {
        var written = 0
        while written < count {
            let result = buffer.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, count - written) }
            guard result > 0 else { return false }
            written += result
        }
        return true
    }
}

/// Bytes of the current answer still to forward before the cut; nil passes everything.
private final class Cut: Sendable {
    let remaining = Mutex<Int?>(nil)
}
