import ArgumentParser
import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import ModelManager

/// How a `rondo` command that changes the federation reaches the data directory's one writer.
///
/// - A coordinator runs (it holds `rondo.lock`): the command goes through its admin API, with the admin token
///   from `--admin-token-file`, `RONDO_ADMIN_TOKEN` or `DATA_DIR/admin-token`. The coordinator carries it out
///   at once (a revoked token is refused from that moment) and audits it.
/// - None runs: the command takes the lock (a coordinator starting meanwhile waits) and writes the store.
enum OperatorChannel {
    case coordinator(AdminAPI)
    case store(CheckpointStore, DataDirectoryLock)

    /// The running coordinator's admin API for a read, or nil when none runs (read the store then).
    static func running(_ store: StoreOptions, _ operatorOptions: OperatorOptions) async throws -> AdminAPI? {
        if let api = try remoteOnly(store, operatorOptions) { return api }
        _ = try await store.openStore()
        guard DataDirectoryLock.isHeld(directory: store.dataDir),
            let url = operatorOptions.url ?? DataDirectoryLock.readAddress(directory: store.dataDir)?.url
        else { return nil }
        return AdminAPI(
            url: url, token: try operatorOptions.adminToken(dataDir: store.dataDir), caFile: operatorOptions.caFile)
    }

    static func open(_ store: StoreOptions, _ operatorOptions: OperatorOptions) async throws -> OperatorChannel {
        if let api = try remoteOnly(store, operatorOptions) { return .coordinator(api) }
        let database = try await store.openStore()  // a missing database is the clearer error
        try requireOwner(store.dataDir)
        if let lock = try DataDirectoryLock.tryAcquire(directory: store.dataDir) { return .store(database, lock) }
        if let url = operatorOptions.url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--url must be an http:// or https:// URL")
        }
        guard let url = operatorOptions.url ?? DataDirectoryLock.readAddress(directory: store.dataDir)?.url else {
            throw CommandFailure(
                "a process holds \(store.dataDir) but published no address (a coordinator starting, a demo, or "
                    + "another rondo command); retry in a moment, or give the coordinator's --url")
        }
        return .coordinator(
            AdminAPI(
                url: url, token: try operatorOptions.adminToken(dataDir: store.dataDir), caFile: operatorOptions.caFile)
        )
    }

    /// The admin API at `--url` when this data directory holds no database: a coordinator whose store is on
    /// PostgreSQL (high availability), reached from any machine. Nil when there is a local database to use.
    private static func remoteOnly(_ store: StoreOptions, _ operatorOptions: OperatorOptions) throws -> AdminAPI? {
        guard let url = operatorOptions.url,
            !FileManager.default.fileExists(atPath: resolvedDatabasePath(store.dataDir))
        else {
            return nil
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ValidationError("--url must be an http:// or https:// URL")
        }
        return AdminAPI(
            url: url, token: try operatorOptions.adminToken(dataDir: store.dataDir), caFile: operatorOptions.caFile)
    }

    /// Refuses a write that has no admin API (import, prune) while a coordinator runs.
    static func requireNoCoordinator(_ store: StoreOptions, action: String) async throws -> DataDirectoryLock {
        _ = try await store.openStore()
        try requireOwner(store.dataDir)
        guard let lock = try DataDirectoryLock.tryAcquire(directory: store.dataDir) else {
            let holder = DataDirectoryLock.readAddress(directory: store.dataDir).map { " at \($0.url)" } ?? ""
            throw CommandFailure(
                "a coordinator runs on \(store.dataDir)\(holder); stop it before you \(action) "
                    + "(it is the data directory's one writer)")
        }
        return lock
    }
}

extension OperatorChannel {
    /// Writes to a data directory run as its owner, as the coordinator does: a command run as another user
    /// (root, say) would leave files the coordinator cannot open.
    static func requireOwner(_ directory: String) throws {
        let owner = try FileManager.default.attributesOfItem(atPath: directory)[.ownerAccountID] as? NSNumber
        guard let owner, owner.uint32Value == geteuid() else {
            throw CommandFailure(
                "\(directory) belongs to uid \(owner.map { "\($0)" } ?? "?"); run this command as that user")
        }
    }
}

/// Options of commands that may go through a running coordinator's admin API.
struct OperatorOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The running coordinator's URL, when the one it published (loopback) is not the one to use here: a "
                + "TLS certificate for a host name, another network namespace."))
    var url: String?

    @Option(help: "File holding the admin token (default: env RONDO_ADMIN_TOKEN, else DATA_DIR/admin-token).")
    var adminTokenFile: String?

    @Option(help: "CA certificate to trust when the running coordinator serves HTTPS.")
    var caFile: String?

    func adminToken(dataDir: String) throws -> String {
        if let adminTokenFile { return try SecretFile.readConfigured(adminTokenFile) }
        if let token = ProcessInfo.processInfo.environment["RONDO_ADMIN_TOKEN"], !token.isEmpty { return token }
        let generated = (dataDir as NSString).appendingPathComponent("admin-token")
        guard let token = try SecretFile.readGenerated(generated) else {
            throw CommandFailure(
                "a coordinator runs on \(dataDir); give its admin token with --admin-token-file or RONDO_ADMIN_TOKEN")
        }
        return token
    }
}

/// A running coordinator's admin API, for the CLI.
struct AdminAPI {
    let url: String
    let token: String
    let caFile: String?

    /// POSTs a JSON body; returns the decoded answer.
    /// - Throws: `AdminAPIError` with the coordinator's error code and message for any non-2xx answer.
    func post<Answer: Decodable>(_ path: String, _ body: (some Encodable)?, as: Answer.Type) async throws -> Answer {
        try await call("POST", path, body: try body.map { Array(try JSONEncoder().encode($0)) }, as: Answer.self)
    }

    /// GETs a JSON answer.
    func get<Answer: Decodable>(_ path: String, as: Answer.Type) async throws -> Answer {
        try await call("GET", path, body: nil, as: Answer.self)
    }

    private func call<Answer: Decodable>(_ method: String, _ path: String, body: [UInt8]?, as: Answer.Type)
        async throws -> Answer
    {
        let client = CurlHTTPClient(configuration: .init(caFile: caFile))
        defer { client.shutdown() }
        // The admin token authorises; `Rondo-Operator` names the person behind it in the audit log.
        var headers = [
            (name: "Authorization", value: "Bearer \(token)"), (name: "Rondo-Operator", value: operatorName),
        ]
        if body != nil { headers.append((name: "Content-Type", value: "application/json")) }
        let response: HTTPResponse
        do {
            response = try await client.execute(
                HTTPRequest(method: method, url: url + path, headers: headers, body: body, timeout: .seconds(60)))
        } catch {
            throw CommandFailure(
                "cannot reach the coordinator at \(url) (is it still running?): \(error)", code: "unreachable")
        }
        guard (200..<300).contains(response.status) else {
            let error = try? JSONDecoder().decode(WireProtocol.ErrorMessage.self, from: Data(response.body))
            throw AdminAPIError(
                status: response.status, code: Self.printable(error?.error.code ?? "http_\(response.status)"),
                message: Self.printable(
                    error?.error.message ?? String(decoding: response.body.prefix(200), as: UTF8.self)))
        }
        return try JSONDecoder().decode(Answer.self, from: Data(response.body))
    }
}

extension AdminAPI {
    /// Text from the server made safe for a terminal: control characters (escape sequences) become `?`.
    static func printable(_ text: String) -> String {
        String(
            String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}

/// Any JSON value, read and dropped: for answers whose content a command does not use.
struct AnyDecodable: Decodable {
    init(from decoder: any Decoder) throws {}
}
