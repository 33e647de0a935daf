import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, `postgres` on a free
/// 127.0.0.1 port, stopped when the test process exits.
///
/// PostgreSQL refuses to run as root, so under root the server runs as the `postgres` OS user that Debian's
/// package creates (override with `RONDO_PG_USER`); as anyone else it runs as that user. The binaries come
/// from `RONDO_PG_BIN`, or Debian's `/usr/lib/postgresql/15/bin`. Every test takes its own database
/// (`makeDatabase()`), so tests share one server and never each other's tables.
public final class PostgresTestCluster: Sendable {
    public let port: Int
    public let directory: String
    public let username = "rondo"
    private let binaries: String
    private let osUser: String?
    private let databases = Mutex(0)

    /// The one server of this test process, started on first use.
    public static func shared() throws -> PostgresTestCluster {
        try sharedCluster.withLock { cluster in
            if let cluster { return cluster }
            let started = try PostgresTestCluster()
            cluster = started
            atexit { PostgresTestCluster.stopShared() }
            return started
        }
    }

    private static let sharedCluster = Mutex<PostgresTestCluster?>(nil)

    private static func stopShared() {
        sharedCluster.withLock { $0?.stop() }
    }

    /// `postgres://rondo@127.0.0.1:PORT/NAME` for a new, empty database.
    public func makeDatabase() throws -> String {
        let name = databases.withLock { count in
            count += 1
            return "rondo_test_\(getpid())_\(count)"
        }
        try run("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", username, name])
        return url(database: name)
    }

    public func url(database: String) -> String {
        "postgres://\(username)@127.0.0.1:\(port)/\(database)"
    }

    private init() throws {
        let root = ProcessInfo.processInfo.environment["RONDO_PG_BIN"] ?? "/usr/lib/postgresql/15/bin"
        guard FileManager.default.isExecutableFile(atPath: root + "/initdb") else {
            throw ClusterError(
                "no PostgreSQL at \(root) (install Debian's postgresql-15, or set RONDO_PG_BIN); `make test` installs it"
            )
        }
        let osUser = getuid() == 0 ? (ProcessInfo.processInfo.environment["RONDO_PG_USER"] ?? "postgres") : nil
        // Under /tmp, not $TMPDIR: the server's OS user must be able to reach the directory through its parents.
        let directory = "/tmp/rondo-pg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let osUser {
            try FileManager.default.setAttributes([.ownerAccountName: osUser], ofItemAtPath: directory)
        }
        let run = { (tool: String, arguments: [String]) throws in
            try Self.run(root + "/" + tool, arguments, as: osUser)
        }
        _ = try run("initdb", ["-D", directory + "/data", "-U", "rondo", "--auth=trust", "-E", "UTF8", "--no-sync"])
        var started: Int?
        var lastError: (any Error)?
        for _ in 0..<5 where started == nil {
            let candidate = Self.freePort()
            do {
                _ = try run(
                    "pg_ctl",
                    [
                        "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "30", "-o",
                        "-p \(candidate) -k \(directory) -c listen_addresses=127.0.0.1 -c max_connections=200",
                        "start",
                    ])
                started = candidate
            } catch {
                lastError = error
            }
        }
        guard let started else {
            try? FileManager.default.removeItem(atPath: directory)
            throw lastError ?? ClusterError("PostgreSQL did not start")
        }
        self.port = started
        self.directory = directory
        self.binaries = root
        self.osUser = osUser
    }

    /// Stops the server at once and deletes its files.
    public func stop() {
        _ = try? run("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs one of the PostgreSQL binaries (as the server's OS user when we are root).
    @discardableResult
    public func run(_ tool: String, _ arguments: [String]) throws -> String {
        try Self.run(binaries + "/" + tool, arguments, as: osUser)
    }

    /// Runs `path` to completion with posix_spawn and waitpid (Foundation's `waitUntilExit` hung here once the
    /// server `pg_ctl` starts outlived it). Output goes to a file, not a pipe: that server inherits the
    /// descriptor, and a pipe would never reach end-of-file.
    private static func run(_ path: String, _ arguments: [String], as osUser: String?) throws -> String {
        let argv = osUser.map { ["/usr/sbin/runuser", "-u", $0, "--", path] } ?? [path]
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rondo-pg-output-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let all = argv + arguments
        var cArguments = all.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, all[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else { throw ClusterError("cannot start \(all[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED and WEXITSTATUS, spelled out (the C macros do not import).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw ClusterError("\(path) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return text
    }

    /// A port nothing listens on now (the kernel's pick for an ephemeral bind).
    private static func freePort() -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
