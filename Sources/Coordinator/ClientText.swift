import FederationCore
import Foundation

/// Checks and cleans strings that clients and operators send (names, failure messages, reasons).
///
/// Limits count UTF-8 bytes, not characters: one character with thousands of combining marks is one
/// `Character` but kilobytes of storage and log. Control characters are refused where a value is shown on one
/// line (a newline in a name could forge a log line; a NUL would cut the stored text short).
enum ClientText {
    /// The longest client name, in UTF-8 bytes.
    static let maxNameBytes = 200
    /// The longest failure message or operator reason, in UTF-8 bytes.
    static let maxMessageBytes = 4096
    /// The most of a client-sent text a log line carries.
    static let maxLoggedBytes = 512

    /// `text` trimmed, checked to be 1...`maxBytes` UTF-8 bytes with no control characters (newline and tab
    /// too, unless `multiline`).
    /// - Throws: `APIError` 422 with `code` naming the field.
    static func validated(_ text: String, field: String, code: APIError.Code, maxBytes: Int, multiline: Bool = false)
        throws(APIError) -> String
    {
        // CRLF line ends (a Windows client's stack trace) count as newlines.
        let trimmed = (multiline ? text.replacingOccurrences(of: "\r\n", with: "\n") : text).trimmingWhitespace()
        guard !trimmed.isEmpty else {
            throw APIError(.unprocessableContent, code: code, "\(field) must not be empty")
        }
        guard trimmed.utf8.count <= maxBytes else {
            throw APIError(
                .unprocessableContent, code: code,
                "\(field) is \(trimmed.utf8.count) bytes of UTF-8; at most \(maxBytes) are allowed")
        }
        // Control characters, and format characters (bidi overrides such as U+202E, zero-width characters)
        // that make a name display as something else.
        let refused = trimmed.unicodeScalars.first { scalar in
            switch scalar.properties.generalCategory {
            case .control: !(multiline && (scalar == "\n" || scalar == "\t"))
            case .format: !multiline
            default: false
            }
        }
        if let refused {
            throw APIError(
                .unprocessableContent, code: code,
                "\(field) contains the control or format character U+\(String(refused.value, radix: 16, uppercase: true))"
            )
        }
        return trimmed
    }

    /// `text` made safe for one log line: control characters escaped (`\n`, `\u{7}`), cut to
    /// `maxLoggedBytes` of UTF-8 with a marker saying how much was left out.
    static func forLog(_ text: String) -> String {
        var escaped = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let piece: String =
                switch scalar {
                case "\n": "\\n"
                case "\r": "\\r"
                case "\t": "\\t"
                case _
                where scalar.properties.generalCategory == .control || scalar == "\u{2028}"
                    || scalar == "\u{2029}":
                    "\\u{\(String(scalar.value, radix: 16))}"
                default: String(scalar)
                }
            guard bytes + piece.utf8.count <= maxLoggedBytes else {
                return escaped + "…(\(text.utf8.count) bytes)"
            }
            escaped += piece
            bytes += piece.utf8.count
        }
        return escaped
    }
}

extension String {
    /// The string without leading and trailing white space (spaces, tabs, newlines).
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
