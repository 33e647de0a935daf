import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import ModelManager

#if canImport(Glibc)
    import Glibc
#endif

/// Attacks on the operator side: an untrusted data directory, corrupt or unfit checkpoints, and signals.
@Suite struct HardeningCLITests {
    static let adminToken = "hardening-admin-token-0123456789"

    static func model(_ values: [Float], name: String = "w") -> ModelWeights {
        ModelWeights([name: Tensor(shape: [values.count], values: values)])
    }

    /// A data directory whose store holds v1 and v2 (current), each a two-value model.
    static func storeWithTwoVersions() async throws -> (String, CheckpointStore) {
        let directory = RunningCoordinator.temporaryDirectory()
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        for value in [Float(1), 2] {
            _ = try await store.insert(
                round: 0, parentVersion: nil,
                bytes: SafeTensorsFile(weights: model([value, value])).encoded(), tensorCount: 1, status: .imported,
                makeCurrent: true)
        }
        return (directory, store)
    }

    static func write(_ weights: ModelWeights, to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(SafeTensorsFile(weights: weights).encoded()))
    }

    @Test func importRefusesUnfitModelsAndALayoutChangeNeedsForce() async throws {
        let (directory, store) = try await Self.storeWithTwoVersions()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases: [(String, ModelWeights, String)] = [
            ("nan", Self.model([1, .nan]), "non_finite"),
            ("inf", Self.model([.infinity, 1]), "non_finite"),
            ("empty", ModelWeights(["w": Tensor(shape: [0], values: [])]), "empty"),
            ("foreign", Self.model([1, 2, 3], name: "other"), "layout_changed"),
        ]
        for (name, weights, reason) in cases {
            let file = directory + "/\(name).safetensors"
            Self.write(weights, to: file)
            let run = try await ChildProcess.runRondo(["checkpoints", "import", file, "--data-dir", directory])
            #expect(run.status != 0 && run.output.contains(reason), "\(name): \(run.output)")
        }
        #expect(try await store.refVersion(.current) == 2, "nothing refused became current")
        #expect(try await store.checkpoints().count == 2)

        let forced = try await ChildProcess.runRondo([
            "checkpoints", "import", directory + "/foreign.safetensors", "--force", "--data-dir", directory,
        ])
        #expect(forced.status == 0, "\(forced.output)")
        #expect(try await store.refVersion(.current) == 3)
        let event = try #require(try await store.events(kind: .layoutChanged).first)
        #expect(event.version == 3 && event.detail["from_version"] == "2")
    }

    @Test func rollbackRefusesAVersionCorruptedSinceTheLastVerify() async throws {
        let (directory, store) = try await Self.storeWithTwoVersions()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await store.rawQuery(
            "UPDATE checkpoint_chunks SET data = ? WHERE version = 1", [.blob(Array("flipped".utf8))])
        let rollback = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "1", "--reason", "drill", "--data-dir", directory,
        ])
        #expect(rollback.status != 0 && rollback.output.contains("hashes to"), "\(rollback.output)")
        #expect(try await store.refVersion(.current) == 2, "the corrupt version did not become current")
    }

    @Test func serveRefusesADataDirectoryOthersCanWriteOrAPlantedToken() async throws {
        let parent = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        // World-writable, with an attacker's admin token in it.
        let open = parent + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        chmod(open, 0o777)
        FileManager.default.createFile(atPath: open + "/admin-token", contents: Data("attacker-token-0123456789".utf8))
        let refused = try await ChildProcess.runRondo(["serve", "--port", "0", "--data-dir", open])
        #expect(refused.status != 0 && refused.output.contains("writable by other users"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: open + "/rondo.db"))

        // A private directory, but the token file belongs to someone else.
        let planted = parent + "/planted"
        try FileManager.default.createDirectory(atPath: planted, withIntermediateDirectories: true)
        chmod(planted, 0o700)
        FileManager.default.createFile(
            atPath: planted + "/admin-token", contents: Data("attacker-token-0123456789".utf8))
        chown(planted + "/admin-token", 65534, 65534)
        let notOurs = try await ChildProcess.runRondo(["serve", "--port", "0", "--data-dir", planted, "--demo-model"])
        #expect(notOurs.status != 0 && notOurs.output.contains("belongs to uid 65534"), "\(notOurs.output)")

        // rondo.db as a symlink to somewhere else: refused, and nothing is created at the target.
        let linked = parent + "/linked"
        try FileManager.default.createDirectory(atPath: linked, withIntermediateDirectories: true)
        chmod(linked, 0o700)
        symlink(parent + "/elsewhere.db", linked + "/rondo.db")
        let symlinked = try await ChildProcess.runRondo([
            "serve", "--port", "0", "--data-dir", linked, "--demo-model", "--admin-token", Self.adminToken,
            "--open-enrolment",
        ])
        #expect(symlinked.status != 0, "\(symlinked.output)")
        #expect(!FileManager.default.fileExists(atPath: parent + "/elsewhere.db"))
    }

    @Test func filesArePrivateTokenFilesWorkAndASecondSignalStopsAtOnce() async throws {
        let directory = RunningCoordinator.temporaryDirectory() + "/data"
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let tokenFile = (directory as NSString).deletingLastPathComponent + "/admin.token"
        FileManager.default.createFile(
            atPath: tokenFile, contents: Data((Self.adminToken + "\n").utf8), attributes: [.posixPermissions: 0o666])
        let port = try ChildProcess.freePort()
        let arguments = [
            "serve", "--port", String(port), "--data-dir", directory, "--demo-model", "--admin-token-file", tokenFile,
            "--min-available-clients", "1", "--min-fit-clients", "1", "--min-fit-results", "1", "--open-enrolment",
            "--fit-timeout", "600", "--log-level", "notice",
        ]
        let loose = try await ChildProcess.runRondo(arguments)
        #expect(loose.status != 0 && loose.output.contains("has mode 666"), "\(loose.output)")
        chmod(tokenFile, 0o600)

        let server = try ChildProcess(ChildProcess.rondoBinary, arguments)
        defer { server.kill() }
        try await server.waitForOutput("listening on")
        for (path, mode) in [
            (directory, 0o700), (directory + "/rondo.db", 0o600), (directory + "/rondo.db-wal", 0o600),
        ] {
            var info = stat()
            #expect(
                stat(path, &info) == 0 && info.st_mode & 0o777 == mode, "\(path): \(String(info.st_mode, radix: 8))")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/admin-token"), "the token file was used")

        // A client takes a fit task, so the round stays open and a first SIGTERM drains for up to 10 minutes.
        let http = CurlHTTPClient(configuration: .init())
        defer { http.shutdown() }
        let url = "http://127.0.0.1:\(port)"
        let registered = try await http.execute(
            HTTPRequest(
                method: "POST", url: url + "/v1/clients", headers: [("Content-Type", "application/json")],
                body: Array(#"{"name":"site"}"#.utf8), timeout: .seconds(10)))
        let client = try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(registered.body))
        let task = try await http.execute(
            HTTPRequest(
                method: "GET", url: url + "/v1/clients/\(client.clientID)/tasks/next?wait_seconds=10",
                headers: [("Authorization", "Bearer \(client.token)")], timeout: .seconds(20)))
        #expect(task.status == 200)
        let status = try await http.execute(
            HTTPRequest(
                method: "GET", url: url + "/v1/status", headers: [("Authorization", "Bearer \(Self.adminToken)")],
                timeout: .seconds(10)))
        #expect(status.status == 200, "the admin token came from --admin-token-file")

        server.send(signal: SIGTERM)
        try await server.waitForOutput("draining")
        #expect(try await !server.waitForExit(timeout: .milliseconds(500)), "the first signal drains")
        server.send(signal: SIGTERM)
        #expect(try await server.waitForExit(timeout: .seconds(15)), "the second signal stops at once")
        #expect(server.exitStatus == 128 + SIGTERM, "a forced stop says so in the exit status")
    }
}
