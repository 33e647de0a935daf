import CurlHTTP
import FederationCore
import Foundation
import Synchronization

/// A `rondo serve` child process for benchmarks: this same binary (or another build, to compare two side by
/// side), on a free port and its own data directory, with its memory read from /proc.
final class BenchCoordinator: Sendable {
    private let process: Process
    private let output = Mutex("")
    let dataDirectory: String

    init(directory: String, arguments: [String], executable: String? = nil) throws {
        dataDirectory = directory + "/data"
        process = Process()
        process.executableURL =
            executable.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["serve", "--port", "0", "--data-dir", dataDirectory] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let reader = Thread { [self] in
            while true {
                let data = pipe.fileHandleForReading.availableData
                if data.isEmpty { break }
                output.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        reader.start()
    }

    /// A coordinator for the round benches: starts from `initialModel` (written to `directory`), selects all
    /// `clients` in each of `rounds` rounds, needs every result, runs no evaluation, and takes `extra` flags.
    convenience init(
        directory: String, initialModel: [UInt8], clients: Int, rounds: Int, extra: [String], executable: String?
    ) throws {
        let path = directory + "/initial.safetensors"
        guard FileManager.default.createFile(atPath: path, contents: Data(initialModel)) else {
            throw CommandFailure("cannot write the initial model to \(directory)", code: "io")
        }
        try self.init(
            directory: directory,
            arguments: [
                "--initial-model", path, "--open-enrolment", "--min-available-clients", String(clients),
                "--min-fit-clients", String(clients), "--min-fit-results", String(clients), "--fraction-evaluate",
                "0", "--rounds", String(rounds), "--fit-timeout", "600", "--log-level", "error",
            ] + extra, executable: executable)
    }

    /// The coordinator's URL, once it prints that it listens (60 s at most).
    func waitUntilListening() async throws -> String {
        for _ in 0..<600 {
            let text = output.withLock { $0 }
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on ") }),
                let url = line.split(separator: " ").last
            {
                return String(url)
            }
            guard process.isRunning else {
                throw CommandFailure("the coordinator exited: \(text.suffix(500))", code: "bench_failed")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CommandFailure("the coordinator did not start within 60 s", code: "bench_failed")
    }

    /// Start-to-finish seconds of the newest `count` rounds, once all of them committed (10 minutes at most).
    func roundDurations(http: CurlHTTPClient, url: String, count: Int) async throws -> [Double] {
        let token = try String(contentsOfFile: dataDirectory + "/admin-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<6000 {
            let response = try await http.execute(
                HTTPRequest(url: url + "/v1/rounds?limit=\(count)", headers: [("Authorization", "Bearer \(token)")]))
            let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            let rounds = object?["rounds"] as? [[String: Any]] ?? []
            if rounds.count == count, rounds.allSatisfy({ $0["status"] as? String != "running" }) {
                guard rounds.allSatisfy({ $0["status"] as? String == "committed" }) else {
                    throw CommandFailure("a round did not commit: \(rounds)", code: "bench_failed")
                }
                return rounds.reversed().compactMap { $0["duration_seconds"] as? Double }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CommandFailure("the rounds did not finish within 10 minutes", code: "bench_failed")
    }

    /// `VmRSS` in kB now.
    func residentKB() -> Int? { statusField("VmRSS") }

    /// `VmHWM` in kB: the highest resident set size so far.
    func peakResidentKB() -> Int? { statusField("VmHWM") }

    /// User plus system CPU seconds the coordinator has used so far (`/proc/PID/stat`).
    func cpuSeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": state is field 3, utime field 14, stime field 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    func stop() {
        if process.isRunning {
            process.interrupt()
            process.terminate()
        }
        process.waitUntilExit()
    }
}

/// One benchmark client: registers, then for each round long-polls its fit task, downloads the task's model and
/// uploads `update`, timing both transfers.
struct BenchClient {
    struct Timings: Sendable {
        var downloadSeconds: [Double] = []
        var uploadSeconds: [Double] = []
        /// Each download's start and end, in seconds since the bench's shared origin, by round.
        var downloads: [(round: Int, start: Double, end: Double)] = []
        /// Each upload's start and end (until its 202), the same way.
        var uploads: [(round: Int, start: Double, end: Double)] = []
    }

    let http: CurlHTTPClient
    let url: String
    let name: String

    func participate(rounds: Int, update: [UInt8], origin: ContinuousClock.Instant) async throws -> Timings {
        let registered = try await http.execute(
            HTTPRequest(
                method: "POST", url: url + "/v1/clients", headers: [("Content-Type", "application/json")],
                body: Array(#"{"name":"\#(name)"}"#.utf8)))
        let registration = try JSONDecoder().decode(
            WireProtocol.RegistrationResponse.self, from: Data(registered.body))
        let authorization = ("Authorization", "Bearer \(registration.token)")
        var timings = Timings()
        let clock = ContinuousClock()
        while timings.uploadSeconds.count < rounds {
            let next = try await http.execute(
                HTTPRequest(
                    url: url + "/v1/clients/\(registration.clientID)/tasks/next?wait_seconds=30",
                    headers: [authorization], timeout: .seconds(60)))
            guard next.status == 200 else { continue }
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(next.body))
            var started = clock.now
            let model = try await http.execute(
                HTTPRequest(
                    url: url + "/v1/models/\(task.modelVersion)", headers: [authorization], timeout: .seconds(600)))
            guard model.status == 200 else {
                throw CommandFailure("model download answered \(model.status)", code: "bench_failed")
            }
            let finished = clock.now
            timings.downloadSeconds.append(started.duration(to: finished).seconds)
            timings.downloads.append(
                (task.round, origin.duration(to: started).seconds, origin.duration(to: finished).seconds))
            started = clock.now
            let answer = try await http.execute(
                HTTPRequest(
                    method: "POST", url: url + "/v1/tasks/\(task.taskID)/result",
                    headers: [authorization, ("Content-Type", WireProtocol.safetensorsMediaType)], body: update,
                    timeout: .seconds(600)))
            guard answer.status == 202 else {
                throw CommandFailure(
                    "upload answered \(answer.status): \(String(decoding: answer.body.prefix(300), as: UTF8.self))",
                    code: "bench_failed")
            }
            let uploaded = clock.now
            timings.uploadSeconds.append(started.duration(to: uploaded).seconds)
            timings.uploads.append(
                (task.round, origin.duration(to: started).seconds, origin.duration(to: uploaded).seconds))
        }
        return timings
    }
}
