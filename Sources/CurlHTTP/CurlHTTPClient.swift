import CCurl
import Foundation
import Synchronization

/// An async HTTP/1.1 client on libcurl's multi interface.
///
/// One dedicated thread runs `curl_multi_poll` for every transfer of this client, so blocking libcurl calls
/// never run on Swift's cooperative pool, and hundreds of parked long-polls cost one thread, not hundreds.
/// Connections are kept alive and reused between requests. Cancelling the calling task aborts its transfer.
///
/// `Expect: 100-continue` is disabled: servers that never answer it (Hummingbird among them) would otherwise
/// stall every upload over 1 MiB for a second.
///
/// Call `shutdown()` when done; transfers still running then fail with `CancellationError`.
public final class CurlHTTPClient: Sendable {
    /// Settings for every transfer of a client.
    public struct Configuration: Sendable {
        /// Time allowed to establish a connection. Default 5 s.
        public var connectTimeout: Duration
        /// A PEM file of CA certificates to trust instead of the system store (pinning a private CA).
        public var caFile: String?

        public init(connectTimeout: Duration = .seconds(5), caFile: String? = nil) {
            self.connectTimeout = connectTimeout
            self.caFile = caFile
        }
    }

    private let loop: CurlMultiLoop

    public init(configuration: Configuration = Configuration()) {
        _ = CurlHTTPClient.globalInit
        loop = CurlMultiLoop(configuration: configuration)
        let thread = Thread { [loop] in loop.run() }
        thread.name = "rondo-curl"
        thread.start()
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    /// Performs a request and collects the whole response.
    /// - Throws: `CurlTransferError` when no response arrived, `CancellationError` when the task was cancelled
    ///   or the client shut down.
    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let transfer = CurlTransfer(request: request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.continuation.withLock { $0 = continuation }
                loop.submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }

    /// Stops the transfer thread; running transfers end with `CancellationError`.
    public func shutdown() {
        loop.stop()
    }
}

/// One request in flight, owned by the loop thread once submitted.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    let continuation = Mutex<CheckedContinuation<HTTPResponse, any Error>?>(nil)
    // The fields below are touched only on the loop thread.
    var handle: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var body: UnsafeMutableRawBufferPointer?
    /// libcurl's CURLOPT_ERRORBUFFER: the detailed reason of a failure ("SSL certificate problem: …").
    let errorBuffer: UnsafeMutablePointer<CChar> = {
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        buffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        return buffer
    }()
    var responseBody: [UInt8] = []
    var responseHeaders: [String: String] = [:]

    init(request: HTTPRequest) {
        self.request = request
    }

    deinit { errorBuffer.deallocate() }

    /// What went wrong: libcurl's detailed message when it wrote one, else its generic text for `code`.
    func failureMessage(_ code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
    }

    /// Resumes the caller exactly once.
    func complete(_ result: Result<HTTPResponse, any Error>) {
        let waiting = continuation.withLock { value -> CheckedContinuation<HTTPResponse, any Error>? in
            defer { value = nil }
            return value
        }
        waiting?.resume(with: result)
    }

    func releaseResources() {
        if let handle { curl_easy_cleanup(handle) }
        handle = nil
        curl_slist_free_all(headerList)
        headerList = nil
        body?.deallocate()
        body = nil
    }
}
