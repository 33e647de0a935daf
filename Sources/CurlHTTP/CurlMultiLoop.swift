import CCurl
import Foundation
import Synchronization

/// The thread body behind `CurlHTTPClient`: adds submitted transfers to a multi handle, drives them, and
/// completes them. Every libcurl call happens on this one thread.
final class CurlMultiLoop: @unchecked Sendable {
    private struct Inbox {
        var submitted: [CurlTransfer] = []
        var cancelled: [CurlTransfer] = []
        var stopped = false
    }

    private let inbox = Mutex(Inbox())
    private let multi: UnsafeMutableRawPointer
    private let configuration: CurlHTTPClient.Configuration
    /// Transfers in the multi handle, by easy handle. Loop thread only.
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    init(configuration: CurlHTTPClient.Configuration) {
        self.configuration = configuration
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        self.multi = multi
    }

    func submit(_ transfer: CurlTransfer) {
        let accepted = inbox.withLock { inbox -> Bool in
            guard !inbox.stopped else { return false }
            inbox.submitted.append(transfer)
            return true
        }
        if accepted {
            curl_multi_wakeup(multi)
        } else {
            transfer.complete(.failure(CancellationError()))
        }
    }

    func cancel(_ transfer: CurlTransfer) {
        inbox.withLock { $0.cancelled.append(transfer) }
        curl_multi_wakeup(multi)
    }

    func stop() {
        inbox.withLock { $0.stopped = true }
        curl_multi_wakeup(multi)
    }

    func run() {
        while true {
            let (submitted, cancelled, stopped) = inbox.withLock { inbox in
                defer {
                    inbox.submitted = []
                    inbox.cancelled = []
                }
                return (inbox.submitted, inbox.cancelled, inbox.stopped)
            }
            for transfer in submitted { start(transfer) }
            for transfer in cancelled { finish(transfer, .failure(CancellationError())) }
            if stopped {
                for transfer in Array(active.values) { finish(transfer, .failure(CancellationError())) }
                curl_multi_cleanup(multi)
                return
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var remaining: Int32 = 0
            while let message = curl_multi_info_read(multi, &remaining) {
                guard ccurl_message_is_done(message) != 0, let handle = message.pointee.easy_handle,
                    let transfer = active[handle]
                else { continue }
                let code = ccurl_message_result(message)
                if code == CURLE_OK {
                    var status = 0
                    ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
                    finish(
                        transfer,
                        .success(
                            HTTPResponse(status: status, headers: transfer.responseHeaders, body: transfer.responseBody)
                        ))
                } else {
                    let text = transfer.failureMessage(code)
                    var status = 0
                    ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
                    let partial =
                        status > 0
                        ? HTTPResponse(status: status, headers: transfer.responseHeaders, body: transfer.responseBody)
                        : nil
                    finish(
                        transfer, .failure(CurlTransferError(code: Int(code.rawValue), message: text, partial: partial))
                    )
                }
            }
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &ready)
        }
    }

    private func finish(_ transfer: CurlTransfer, _ result: Result<HTTPResponse, any Error>) {
        if let handle = transfer.handle, active.removeValue(forKey: handle) != nil {
            curl_multi_remove_handle(multi, handle)
        }
        transfer.releaseResources()
        transfer.complete(result)
    }

    private func start(_ transfer: CurlTransfer) {
        guard let handle = curl_easy_init() else {
            transfer.complete(.failure(CurlTransferError(code: 27, message: "curl_easy_init failed")))
            return
        }
        transfer.handle = handle
        let request = transfer.request
        ccurl_setopt_string(handle, CURLOPT_URL, request.url)
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.errorBuffer)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout))
        ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(configuration.connectTimeout))
        ccurl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
        if let caFile = configuration.caFile { ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile) }

        var list: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Expect:")
        for header in request.headers { list = curl_slist_append(list, "\(header.name): \(header.value)") }
        transfer.headerList = list
        ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)

        switch request.method {
        case "GET": ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case "HEAD": ccurl_setopt_long(handle, CURLOPT_NOBODY, 1)
        default: ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if request.method != "GET" && request.method != "HEAD" {
            let bytes = request.body ?? []
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
            bytes.withUnsafeBytes { source in
                if source.count > 0 { copy.copyMemory(from: source) }
            }
            transfer.body = copy
            ccurl_setopt_long(handle, CURLOPT_POST, 1)
            ccurl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
            ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, copy.baseAddress)
        }

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        ccurl_setopt_write_function(handle) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            if let data, length > 0 {
                transfer.responseBody.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
            }
            return length
        }
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        ccurl_setopt_header_function(handle) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data else { return length }
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            if line.hasPrefix("HTTP/") {
                transfer.responseHeaders = [:]  // a new response (after 100 Continue or a redirect)
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                transfer.responseHeaders[name] = value
            }
            return length
        }
        ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)

        active[handle] = transfer
        let added = curl_multi_add_handle(multi, handle)
        if added != CURLM_OK {
            finish(
                transfer,
                .failure(CurlTransferError(code: Int(added.rawValue), message: "curl_multi_add_handle failed")))
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
