import FederationCore
import Hummingbird
import NIOCore

/// Receives one fit-result upload as it arrives: the safetensors header is checked against the round's base
/// model before any tensor byte is accepted, every tensor byte is checked (finite, distance to the base) and
/// appended to an unnamed spool file, and only a complete, valid upload becomes a `CheckedUpdate`.
///
/// Memory per upload is the header plus one network chunk: the body is consumed chunk by chunk, and a chunk
/// is not read before the previous one was checked and written, so a client sending faster than the disk
/// is slowed by TCP backpressure, not buffered. Anything that stops the upload short of a valid end (an
/// invalid byte, a cut connection, a stall cut off by the body-rate guard) drops the spool file and leaves
/// the round untouched: nothing reaches the fold before `finish`.
struct UploadReceiver {
    /// Where spool files go (the data directory).
    var spoolDirectory: String
    var limits: CoordinatorConfiguration.Limits
    var validator: UpdateValidator

    /// How often (in bytes received) an upload checks that its task can still take a result. 16 MiB.
    static let wantedCheckBytes = 16 << 20

    /// What an upload turned out to be.
    struct Received: Sendable {
        var update: CheckedUpdate
        /// Bytes of the whole body.
        var byteCount: Int
    }

    /// The body ended or broke before its last byte.
    struct Aborted: Error, CustomStringConvertible {
        var received: Int
        var expected: Int?
        var cause: String
        var description: String {
            "the upload stopped after \(received) of \(expected.map(String.init) ?? "?") bytes: \(cause)"
        }
    }

    /// Reads, checks and spools `body` against `base`.
    /// - Throws: `SafeTensorsError` (a malformed header, a body shorter or longer than its header declares),
    ///   `UpdateRejection` (names, shapes, dtypes, metadata, NaN/Inf, norm), `APIError` 413 past `maxUpdateBytes`
    ///   (from the header's own size, before any data is read),
    ///   `Aborted` when the connection broke, `SpoolError` when the disk failed.
    /// - Parameter stillWanted: asked every `wantedCheckBytes`; false (the task ended) cuts the upload short.
    func receive(
        _ body: RequestBody, declaredLength: Int?, base: GlobalModel, stillWanted: () async -> Bool
    ) async throws -> Received {
        let maxBytes = limits.maxUpdateBytes
        if let declaredLength, declaredLength > maxBytes { throw APIError.payloadTooLarge(limit: maxBytes) }
        var pending: [UInt8] = []
        var check: StreamingUpdateCheck?
        var spool: SpooledUpdate?
        var total = 0
        var iterator = body.makeAsyncIterator()
        while true {
            let next: ByteBuffer?
            do {
                next = try await iterator.next()
            } catch {
                let cause =
                    error is ConnectionGuardError
                    ? "the connection closed or was cut off (too slow) mid-body" : "\(error)"
                throw Aborted(received: total, expected: declaredLength, cause: cause)
            }
            guard let chunk = next else { break }
            if total / Self.wantedCheckBytes != (total + chunk.readableBytes) / Self.wantedCheckBytes,
                await !stillWanted()
            {
                throw UpdateRejection(.late, "the task ended while its result was streaming in")
            }
            total += chunk.readableBytes
            guard total <= maxBytes else { throw APIError.payloadTooLarge(limit: maxBytes) }
            if var running = check, let spool {
                guard chunk.readableBytes <= running.remaining else {
                    throw SafeTensorsError(
                        .uncoveredData,
                        "the body runs past the \(running.header.dataByteCount) data bytes its header declares")
                }
                try chunk.withUnsafeReadableBytes { raw in
                    try running.consume(raw)
                    try spool.append(raw)
                }
                check = running
                continue
            }
            // Still in the header: gather it (bounded by `maxHeaderBytes`), then check it before any data.
            pending.append(contentsOf: chunk.readableBytesView)
            guard pending.count >= 8 else { continue }
            let headerLength = try pending.withUnsafeBytes { raw in
                try SafeTensorsHeader.declaredLength(raw, limits: limits.safetensors)
            }
            guard pending.count >= 8 + headerLength else { continue }
            let header = try pending.withUnsafeBytes { raw in
                try SafeTensorsHeader.parse(
                    json: UnsafeRawBufferPointer(rebasing: raw[8..<(8 + headerLength)]), dataLength: nil,
                    limits: limits.safetensors)
            }
            let expected = 8 + headerLength + header.dataByteCount
            guard expected <= maxBytes else { throw APIError.payloadTooLarge(limit: maxBytes) }
            if let declaredLength, declaredLength < expected {
                throw SafeTensorsError(
                    .offsetOutOfRange, "the header describes \(expected) bytes but the body has \(declaredLength)")
            }
            if let declaredLength, declaredLength > expected {
                throw SafeTensorsError(
                    .uncoveredData, "the body has \(declaredLength) bytes but the header describes \(expected)")
            }
            guard pending.count <= expected else {
                throw SafeTensorsError(
                    .uncoveredData, "the body runs past the \(header.dataByteCount) data bytes its header declares")
            }
            var running = try StreamingUpdateCheck(header: header, base: base, validator: validator)
            let file = try SpooledUpdate(in: spoolDirectory, header: header)
            try pending.withUnsafeBytes { raw in
                let data = UnsafeRawBufferPointer(rebasing: raw[(8 + headerLength)...])
                try running.consume(data)
                try file.append(data)
            }
            check = running
            spool = file
            pending = []
        }
        if let declaredLength, total < declaredLength {
            throw Aborted(received: total, expected: declaredLength, cause: "the body ended early")
        }
        guard let check, let spool else {
            if pending.count < 8 {
                throw SafeTensorsError(
                    .truncated, "payload has \(pending.count) bytes; the 8-byte header length is missing")
            }
            throw SafeTensorsError(.headerBeyondBody, "the body ended inside the \(pending.count)-byte header")
        }
        guard check.remaining == 0 else {
            throw SafeTensorsError(
                .truncated,
                "the body ended after \(check.received) of the \(check.header.dataByteCount) data bytes its header declares"
            )
        }
        let update = try check.finish(payload: spool)
        return Received(update: update, byteCount: total)
    }
}
