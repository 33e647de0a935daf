import CurlHTTP

/// A model download assembled across cut connections: what to ask for next and whether the bytes are whole.
///
/// After a cut, the next request asks for the rest with `Range: bytes=<received>-` and `If-Range: "<sha256>"`:
/// a coordinator whose model changed meanwhile answers 200 with the whole new one instead of a piece that
/// would not fit. A 206 whose `Content-Range` does not continue exactly where the bytes end, or names another
/// total, is not spliced on: the download starts over. The caller checks the SHA-256 of the result.
struct ResumableDownload {
    let sha256: String
    private(set) var bytes: [UInt8] = []
    /// The whole model's size, once an answer said it.
    private(set) var total: Int?
    /// Requests made after the first.
    var resumes = 0

    init(sha256: String) {
        self.sha256 = sha256
    }

    /// True when the bytes held are the whole model (as far as the answers said how long it is).
    var isWhole: Bool { total.map { bytes.count == $0 } ?? false }

    /// Drops the bytes held: the next request asks for the whole model.
    mutating func restart() {
        bytes = []
        total = nil
    }

    /// Headers for the next request: a range from the bytes held, or none for a whole download.
    var rangeHeaders: [(name: String, value: String)] {
        bytes.isEmpty ? [] : [("Range", "bytes=\(bytes.count)-"), ("If-Range", "\"\(sha256)\"")]
    }

    /// Takes an answer (`complete` false when its connection broke mid-body).
    /// - Returns: true when the model's bytes are whole.
    mutating func take(_ response: HTTPResponse, complete: Bool) -> Bool {
        switch response.status {
        case 200:
            bytes = response.body
            total = complete ? response.body.count : response.headers["content-length"].flatMap { Int($0) }
        case 206:
            guard let range = Self.contentRange(response.headers["content-range"]), range.first == bytes.count,
                total == nil || total == range.total
            else {
                restart()
                return false
            }
            bytes += response.body
            total = range.total
        default:
            return false
        }
        return complete && bytes.count == total
    }

    /// `bytes first-last/total` parsed.
    static func contentRange(_ value: String?) -> (first: Int, last: Int, total: Int)? {
        guard let value, value.hasPrefix("bytes ") else { return nil }
        let parts = value.dropFirst("bytes ".count).split(separator: "/")
        guard parts.count == 2, let total = Int(parts[1]) else { return nil }
        let bounds = parts[0].split(separator: "-")
        guard bounds.count == 2, let first = Int(bounds[0]), let last = Int(bounds[1]), first <= last, last < total
        else { return nil }
        return (first, last, total)
    }
}
