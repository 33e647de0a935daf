import Foundation

/// The bearer token that guards admin endpoints.
///
/// Secure by default: with no token configured, the first start generates 256 random bits into
/// `<data-dir>/admin-token` (mode 0600) and later starts read it back, so an operator finds it in one place
/// and no admin endpoint is ever open.
public enum AdminToken {
    /// The configured token, or the one stored in (or newly generated into) `directory`.
    /// - Returns: the token and the file it lives in (nil when configured directly).
    /// The enrolment token is resolved the same way, into `fileName: "enrolment-token"`. A generated file is
    /// read only if it is a regular file (no symlink) of this user's that no one else may access, and written
    /// with `O_EXCL | O_NOFOLLOW` at mode 0600, so no other local user can plant or read a token there.
    public static func resolve(configured: String?, directory: String, fileName: String = "admin-token") throws -> (
        token: String, file: String?
    ) {
        if let configured, !configured.isEmpty {
            guard configured.count >= 16 else {
                throw AdminTokenError(message: "the \(fileName) must be at least 16 characters")
            }
            return (configured, nil)
        }
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let token = try SecretFile.readGenerated(path) {
            guard token.count >= 16 else { throw AdminTokenError(message: "\(path) holds no usable token") }
            return (token, path)
        }
        let token = Digest.randomToken()
        try SecretFile.create(path, token: token)
        return (token, path)
    }

    /// Compares in time independent of where the strings differ, so response timing leaks nothing.
    static func matches(_ candidate: String, _ expected: String) -> Bool {
        let a = Array(candidate.utf8)
        let b = Array(expected.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

public struct AdminTokenError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// An admin bearer token with its name (written to audit events) and role.
public struct AdminCredential: Sendable {
    /// What a token may do.
    public enum Role: String, Sendable, CaseIterable {
        /// Read endpoints only: status, history, checkpoints, events.
        case viewer
        /// Everything a viewer may, plus rollback, tag, pause/resume, abort round and revoke.
        case `operator`

        func allows(_ needed: Role) -> Bool { self == .operator || needed == .viewer }
    }

    /// Names the token in audit events (`admin:<name>`); never the token itself.
    public var name: String
    public var role: Role
    public var token: String

    /// - Precondition: the token has at least 16 characters.
    public init(name: String, role: Role, token: String) {
        precondition(token.count >= 16, "an admin token must be at least 16 characters")
        self.name = name
        self.role = role
        self.token = token
    }

    /// The credential `candidate` matches, comparing against every token in constant time.
    static func match(_ candidate: String, in credentials: [AdminCredential]) -> AdminCredential? {
        var found: AdminCredential?
        for credential in credentials where AdminToken.matches(candidate, credential.token) {
            found = found ?? credential
        }
        return found
    }
}
