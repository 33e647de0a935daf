import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Makes one process the writer of a data directory: an exclusive `flock` on the directory itself, with the
/// holder's address in `rondo.lock` inside it.
///
/// The lock is on the directory, not on `rondo.lock`: deleting that file (a natural reaction to "another
/// process holds the data directory") must not let a second coordinator in beside the first.
///
/// A running coordinator holds the lock for its whole life and writes where it listens into the file, so
/// `rondo` commands that change the federation (rollback, tag, revoke, pause) find it and go through its admin
/// API instead of writing the database behind its back. With no coordinator running, those commands take the
/// lock themselves and write the store directly; a coordinator starting meanwhile waits for them. The kernel
/// drops the lock when the process exits, however it exits, so a crash never leaves a stale lock.
public final class DataDirectoryLock: Sendable {
    /// Where a running coordinator listens, as written into the lock file.
    public struct Address: Codable, Sendable, Equatable {
        /// `http://127.0.0.1:8080` or `https://…`: a URL this host can reach the admin API on.
        public var url: String
        public var pid: Int32

        public init(url: String, pid: Int32) {
            self.url = url
            self.pid = pid
        }
    }

    public static let fileName = "rondo.lock"

    /// The address file, `DATA_DIR/rondo.lock`.
    public let path: String
    /// The address file, open for writing.
    private let descriptor: Int32
    /// The directory, open and locked.
    private let directoryDescriptor: Int32

    private init(path: String, descriptor: Int32, directoryDescriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
        self.directoryDescriptor = directoryDescriptor
    }

    deinit {
        close(descriptor)
        close(directoryDescriptor)  // releases the lock
    }

    /// Takes the lock if nobody holds it.
    /// - Returns: nil when another process holds it.
    /// - Throws: `DataDirectoryError` when the lock file cannot be opened (a symlink, another user's file).
    public static func tryAcquire(directory: String) throws -> DataDirectoryLock? {
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else {
            throw DataDirectoryError("cannot open the data directory \(directory): \(DataDirectory.errno())")
        }
        guard flock(directoryDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure = errno
            close(directoryDescriptor)
            if failure == EWOULDBLOCK { return nil }
            throw DataDirectoryError("cannot lock \(directory): \(String(cString: strerror(failure)))")
        }
        let path = (directory as NSString).appendingPathComponent(fileName)
        let descriptor = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        var info = stat()
        guard descriptor >= 0, fstat(descriptor, &info) == 0, info.st_uid == geteuid(),
            info.st_mode & S_IFMT == S_IFREG,
            // Whatever an earlier holder published is stale now: until this holder publishes its own address
            // (only a coordinator does), commands find none and send the admin token nowhere.
            ftruncate(descriptor, 0) == 0
        else {
            let reason = descriptor < 0 ? DataDirectory.errno() : "not a regular file of this user"
            if descriptor >= 0 { close(descriptor) }
            close(directoryDescriptor)
            throw DataDirectoryError("cannot use the lock file \(path): \(reason)")
        }
        return DataDirectoryLock(path: path, descriptor: descriptor, directoryDescriptor: directoryDescriptor)
    }

    /// True when another process holds the lock now (a coordinator, a demo, or a `rondo` write). Takes and
    /// drops a shared lock to find out; changes nothing.
    public static func isHeld(directory: String) -> Bool {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_SH | LOCK_NB) == 0 else { return errno == EWOULDBLOCK }
        flock(descriptor, LOCK_UN)
        return false
    }

    /// Takes the lock, waiting up to `timeout` for another process (a short CLI write) to release it.
    /// - Throws: `DataDirectoryError` when it is still held after `timeout` (another coordinator runs).
    public static func acquire(directory: String, waitingUpTo timeout: Duration) async throws -> DataDirectoryLock {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if let lock = try tryAcquire(directory: directory) { return lock }
            guard ContinuousClock.now < deadline else {
                let holder = readAddress(directory: directory).map { " (pid \($0.pid), \($0.url))" } ?? ""
                throw DataDirectoryError(
                    "another process holds the data directory \(directory)\(holder): a coordinator (a data "
                        + "directory has one; stop it first) or a long `rondo checkpoints import|prune` (retry after it)"
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Publishes where this coordinator listens (the lock file's contents; only meaningful while locked).
    public func publish(_ address: Address) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let data = try encoder.encode(address)
        guard ftruncate(descriptor, 0) == 0,
            data.withUnsafeBytes({ pwrite(descriptor, $0.baseAddress, $0.count, 0) }) == data.count
        else {
            throw DataDirectoryError("cannot write \(path): \(DataDirectory.errno())")
        }
    }

    /// Where the coordinator holding `directory`'s lock listens, if one published it: only from a regular file
    /// of this user, and only an `http`/`https` URL (an admin token is about to be sent there).
    public static func readAddress(directory: String) -> Address? {
        let path = (directory as NSString).appendingPathComponent(fileName)
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_uid == geteuid(), info.st_mode & S_IFMT == S_IFREG else {
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(descriptor, &buffer, buffer.count)
        guard count > 0, let address = try? JSONDecoder().decode(Address.self, from: Data(buffer[..<count])),
            address.url.hasPrefix("http://") || address.url.hasPrefix("https://")
        else { return nil }
        return address
    }
}
