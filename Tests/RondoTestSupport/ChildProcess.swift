import Foundation
import Synchronization

/// A process started by a test: its output is collected, and it is killed when the test is done with it.
public final class ChildProcess: Sendable {
    private let process: Process
    private let pipe: Pipe
    private let output = CollectedOutput()

    /// Serialises `Process.run` across the test process.
    private static let launching = Mutex(())

    /// The repository root (this file is `Tests/RondoTestSupport/ChildProcess.swift`).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The `rondo` executable built next to the tests (override with `RONDO_BINARY`).
    public static var rondoBinary: String {
        ProcessInfo.processInfo.environment["RONDO_BINARY"] ?? repositoryRoot + "/.build/debug/rondo"
    }

    /// Starts `executable` with `arguments`; standard output and error are merged and collected.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        // One launch at a time: Foundation's `Process.run` crashed (SIGSEGV in its memcpy) when tests running in
        // parallel launched children at the same moment.
        try Self.launching.withLock { _ in try process.run() }
        self.process = process
        self.pipe = pipe
        // A plain thread with blocking reads: dispatch-based readability handlers crash in libdispatch when the
        // descriptor is closed under them, which happens when a test drops a finished process.
        let output = output
        let reader = Thread {
            let handle = pipe.fileHandleForReading
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                output.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
            output.finished.withLock { $0 = true }
        }
        reader.start()
    }

    /// Runs `rondo` with `arguments` to completion; returns its exit status and output.
    public static func runRondo(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (
        status: Int32, output: String
    ) {
        try await runRondoLike(rondoBinary, arguments, timeout: timeout)
    }

    /// Runs any executable to completion; returns its exit status and output.
    public static func runRondoLike(
        _ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)
    ) async throws -> (status: Int32, output: String) {
        let child = try ChildProcess(executable, arguments)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while child.isRunning {
            guard ContinuousClock.now < deadline else {
                child.kill()
                throw ChildProcessError(
                    message: "\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Let the reader reach the end of the output (bounded: a grandchild could hold the pipe open).
        for _ in 0..<100 where !child.output.finished.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
        return (child.process.terminationStatus, child.output.text.withLock { $0 })
    }

    public var isRunning: Bool { process.isRunning }
    /// The exit status, once the process has ended.
    public var exitStatus: Int32 { process.terminationStatus }
    public var pid: Int32 { process.processIdentifier }
    public var collectedOutput: String { output.text.withLock { $0 } }

    /// Waits until the output contains `text`.
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !collectedOutput.contains(text) {
            guard ContinuousClock.now < deadline, isRunning else {
                throw ChildProcessError(message: "never printed \"\(text)\"; output:\n\(collectedOutput)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    public func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Sends `signal` without waiting.
    public func send(signal: Int32) {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Waits up to `timeout` for the process to exit; true when it did.
    public func waitForExit(timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return !process.isRunning
    }

    /// SIGTERM, then wait for the exit.
    public func terminate() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit {
        kill()
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ChildProcessError(message: "socket() failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        guard bound == 0 else { throw ChildProcessError(message: "bind() failed") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The text a child process printed so far, appended from the pipe's reader thread.
final class CollectedOutput: Sendable {
    let text = Mutex("")
    let finished = Mutex(false)
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
