/// What a `Range` request header (RFC 9110 §14.2) asks of a representation `total` bytes long. Only a single
/// `bytes` range is served partially; anything else (several ranges, other units, syntax errors) is answered
/// with the whole representation, as the RFC allows.
enum ByteRange: Equatable, Sendable {
    /// Serve everything (no usable range).
    case whole
    /// Serve `range` with 206 and `Content-Range: bytes first-last/total`.
    case partial(ClosedRange<Int>)
    /// 416: the range starts at or after the end.
    case unsatisfiable

    init(header: String?, total: Int) {
        // The unit is case-insensitive (RFC 9110 §14.1).
        guard let header, header.utf8.count <= 100, header.lowercased().hasPrefix("bytes="), !header.contains(",")
        else {
            self = .whole
            return
        }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
            self = .whole
            return
        }
        // All digits: a number too big for `Int` is just past any end (a first byte → 416, a last byte → the end).
        func position(_ digits: Substring) -> Int? { digits.isEmpty ? nil : Int(digits) ?? Int.max }
        switch (position(parts[0]), position(parts[1])) {
        case (let first?, let last?) where first <= last:
            self = first < total ? .partial(first...min(last, total - 1)) : .unsatisfiable
        case (let first?, nil) where parts[1].isEmpty:
            self = first < total ? .partial(first...(total - 1)) : .unsatisfiable
        case (nil, let suffix?) where parts[0].isEmpty:
            self = suffix > 0 && total > 0 ? .partial(max(0, total - suffix)...(total - 1)) : .unsatisfiable
        default:
            self = .whole
        }
    }
}
