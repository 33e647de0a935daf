import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The coordinator's data directory, checked before anything in it is trusted.
///
/// Everything in it is sensitive: weights, the audit log, client token hashes and the generated admin and
/// enrolment tokens. So the directory must belong to the user running the coordinator and be writable by no
/// one else (otherwise another local user could plant an `admin-token` or swap `rondo.db` for a symlink), files
/// are created private (umask 077, tokens 0600 with `O_EXCL | O_NOFOLLOW`), and SQLite opens its database
/// without following symlinks.
public struct DataDirectory: Sendable {
    public let path: String

    /// Creates the directory (0700) when missing, then checks it.
    /// - Throws: `DataDirectoryError` when it belongs to another user or others may write to it.
    public init(preparing path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw DataDirectoryError("cannot read \(path): \(Self.errno())") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw DataDirectoryError("\(path) is not a directory") }
        guard info.st_uid == geteuid() else {
            throw DataDirectoryError(
                "data directory \(path) belongs to uid \(info.st_uid), not to this user (uid \(geteuid())); "
                    + "run the coordinator as its owner")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw DataDirectoryError(
                "data directory \(path) is writable by other users (mode \(String(info.st_mode & 0o777, radix: 8))); "
                    + "run `chmod 700 \(path)`")
        }
        // A directory and files a release before this one created readable by everyone.
        if info.st_mode & 0o077 != 0 { chmod(path, 0o700) }
        for name in ["rondo.db", "rondo.db-wal", "rondo.db-shm"] {
            let file = file(name)
            if lstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() {
                chmod(file, 0o600)
            }
        }
    }

    /// A path inside the directory.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Makes every file this process creates private to its user. Call once at start-up.
    public static func restrictNewFiles() {
        umask(0o077)
    }

    static func errno() -> String { String(cString: strerror(Glibc.errno)) }
}

/// Reads and writes small secret files (tokens) without trusting what another user could have put there.
public enum SecretFile {
    /// Reads a token from a file the coordinator generated in its data directory: not a symlink, owned by this
    /// user, accessible to no one else.
    /// - Returns: nil when the file does not exist.
    public static func readGenerated(_ path: String) throws -> String? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 {
            if Glibc.errno == ENOENT { return nil }
            throw DataDirectoryError("cannot open \(path) (a symlink is refused): \(DataDirectory.errno())")
        }
        defer { close(descriptor) }
        return try read(descriptor, path: path, allowedMode: 0o600, allowRoot: false)
    }

    /// Reads a token from a file an operator named (`--admin-token-file`, …): symlinks are followed (secret
    /// volumes use them), but the file must belong to this user or root and be writable by no one else.
    public static func readConfigured(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DataDirectoryError("cannot open \(path): \(DataDirectory.errno())") }
        defer { close(descriptor) }
        return try read(descriptor, path: path, allowedMode: 0o644, allowRoot: true)
    }

    /// Creates `path` holding `token`, mode 0600, failing if anything (file or symlink) is already there.
    public static func create(_ path: String, token: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw DataDirectoryError("cannot create \(path): \(DataDirectory.errno())") }
        defer { close(descriptor) }
        let bytes = Array((token + "\n").utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count, fsync(descriptor) == 0 else {
            throw DataDirectoryError("cannot write \(path): \(DataDirectory.errno())")
        }
    }

    private static func read(_ descriptor: Int32, path: String, allowedMode: mode_t, allowRoot: Bool) throws
        -> String
    {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw DataDirectoryError("cannot stat \(path)") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw DataDirectoryError("\(path) is not a regular file") }
        guard info.st_uid == geteuid() || (allowRoot && info.st_uid == 0) else {
            throw DataDirectoryError(
                "\(path) belongs to uid \(info.st_uid), not to this user (uid \(geteuid())); refusing its token")
        }
        guard info.st_mode & 0o777 & ~allowedMode == 0 else {
            throw DataDirectoryError(
                "\(path) has mode \(String(info.st_mode & 0o777, radix: 8)); other users could change or read "
                    + "the token (`chmod 600 \(path)`)")
        }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(descriptor, &bytes, bytes.count)
        guard count >= 0 else { throw DataDirectoryError("cannot read \(path)") }
        return String(decoding: bytes.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The data directory or a secret file in it cannot be trusted or used.
public struct DataDirectoryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
