import Crypto
import CurlHTTP
import FederationCore
import Foundation

/// One client's calls to the coordinator's `/v1` API, with its credentials and a model cache.
///
/// Every call maps the answer to a value or a `FederationClientError`; retrying is the caller's choice
/// (`FederatedClient` retries transport errors and 5xx with jittered backoff and re-registers on 401).
public actor CoordinatorConnection {
    /// Where the coordinator is and how this client introduces itself.
    public struct Configuration: Sendable {
        /// Base URL, e.g. `http://127.0.0.1:8470`: the first of `coordinatorURLs`.
        public var coordinatorURL: String { coordinatorURLs[0] }
        /// Every coordinator replica this client may talk to (one Service address, or each replica's URL). A
        /// call that cannot connect, or that a standby answers `not_leader`, moves the client on: to the leader
        /// the standby names when it is one of these, else to the next URL. Never to a URL not listed here, so
        /// a hostile standby cannot send the client's token elsewhere.
        public var coordinatorURLs: [String]
        /// The name this client registers under (shown to operators).
        public var name: String
        /// A PEM CA file to trust for HTTPS instead of the system store.
        public var caFile: String?
        /// Timeout of ordinary calls (model downloads and uploads included). Default 120 s.
        public var requestTimeout: Duration
        /// The federation's enrolment token, sent when registering. Default nil (open enrolment).
        public var enrolmentToken: String?
        /// This site's identity key (a secret, 16–256 printable ASCII characters): registering with it again
        /// after a restart returns the same client id. Default nil (a new client each registration).
        public var identityKey: String?

        public init(
            coordinatorURL: String, name: String, caFile: String? = nil, requestTimeout: Duration = .seconds(120),
            enrolmentToken: String? = nil, identityKey: String? = nil
        ) {
            self.enrolmentToken = enrolmentToken
            self.identityKey = identityKey
            // Several replicas may be given as one comma-separated string (`--coordinator A,B`).
            let urls = coordinatorURL.split(separator: ",").map { Self.normalized(String($0)) }.filter { !$0.isEmpty }
            self.coordinatorURLs = urls.isEmpty ? [Self.normalized(coordinatorURL)] : urls
            self.name = name
            self.caFile = caFile
            self.requestTimeout = requestTimeout
        }

        static func normalized(_ url: String) -> String {
            var url = url.trimmingCharacters(in: .whitespaces)
            while url.hasSuffix("/") { url.removeLast() }
            return url
        }
    }

    /// What registration returned.
    public struct Credentials: Sendable, Equatable {
        public var clientID: String
        public var token: String
        public var heartbeatInterval: Duration
    }

    public let configuration: Configuration
    private let http: CurlHTTPClient
    public private(set) var credentials: Credentials?
    private var cachedModel: (version: Int, sha256: String, weights: ModelWeights)?
    /// Models fetched over the network (not served from cache); for tests and logs.
    public private(set) var modelDownloads = 0
    /// Times a cut model download was resumed (or restarted); for tests and logs.
    public private(set) var downloadResumes = 0
    /// Most resumes of one model download before it fails as a transport error (the caller's retry policy
    /// then takes over). 5.
    public static let modelResumeAttempts = 5

    /// Which of `configuration.coordinatorURLs` calls go to now.
    private var activeURL = 0
    /// The replica calls go to now.
    public var baseURL: String { configuration.coordinatorURLs[activeURL] }
    /// Times this client moved to another replica; for tests and logs.
    public private(set) var failovers = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.http = CurlHTTPClient(configuration: .init(caFile: configuration.caFile))
    }

    deinit {
        http.shutdown()
    }

    /// Registers (again) and keeps the new credentials.
    @discardableResult
    public func register() async throws -> Credentials {
        let body = try JSONEncoder().encode(
            WireProtocol.RegistrationRequest(name: configuration.name, identityKey: configuration.identityKey))
        let response = try await send(
            "POST", "/v1/clients",
            headers: configuration.enrolmentToken.map { [("Authorization", "Bearer \($0)")] } ?? [], body: Array(body),
            contentType: "application/json", authenticated: false)
        let answer = try decode(WireProtocol.RegistrationResponse.self, from: response)
        let credentials = Credentials(
            clientID: answer.clientID, token: answer.token,
            heartbeatInterval: .seconds(min(max(answer.heartbeatIntervalSeconds, 0.05), 3600)))
        self.credentials = credentials
        return credentials
    }

    public func heartbeat() async throws {
        _ = try await send("POST", "/v1/clients/\(try clientID())/heartbeat", json: [])
    }

    /// Long-polls for the next task; nil when none came within `wait`.
    public func nextTask(wait: Duration) async throws -> WireProtocol.TaskMessage? {
        guard case .task(let task) = try await poll(wait: wait) else { return nil }
        return task
    }

    /// Long-polls for the next task: the task, or when none came within `wait`, the coordinator's pace-steering
    /// hint of when to poll again.
    public func poll(wait: Duration) async throws -> PollResult {
        let seconds = wait.seconds
        let response = try await send(
            "GET", "/v1/clients/\(try clientID())/tasks/next?wait_seconds=\(seconds)", timeout: wait + .seconds(15))
        if response.status == 204 { return .idle(retryAfter: Self.retryAfter(response)) }
        return .task(try decode(WireProtocol.TaskMessage.self, from: response))
    }

    /// A poll's outcome.
    public enum PollResult: Sendable {
        case task(WireProtocol.TaskMessage)
        /// No task; poll again after `retryAfter` (the coordinator's `Retry-After`; nil: at once).
        case idle(retryAfter: Duration?)
    }

    /// `Retry-After` in delta-seconds, bounded to an hour (a date or garbage is ignored).
    static func retryAfter(_ response: HTTPResponse) -> Duration? {
        guard let text = response.header("Retry-After"), let seconds = Int(text.trimmingCharacters(in: .whitespaces)),
            seconds >= 0
        else { return nil }
        return .seconds(min(seconds, 3600))
    }

    /// The weights of a model version, from the cache when its SHA-256 matches, otherwise downloaded with
    /// `If-None-Match` and checked against its ETag.
    public func model(version: Int, sha256: String) async throws -> ModelWeights {
        if let cachedModel, cachedModel.sha256 == sha256 { return cachedModel.weights }
        guard let body = try await download(version: version, sha256: sha256, ifNoneMatch: cachedModel?.sha256)
        else {
            // 304: only reached when the cached model is the task's under another version number.
            let cachedModel = cachedModel!
            self.cachedModel = (version, cachedModel.sha256, cachedModel.weights)
            return cachedModel.weights
        }
        modelDownloads += 1
        let digest = SHA256.hash(data: body).hexString
        guard digest == sha256 else {
            throw FederationClientError(
                .invalidResponse, "model \(version) has SHA-256 \(digest), expected \(sha256)")
        }
        do {
            let weights = try SafeTensorsFile.decode(body).weights
            cachedModel = (version, sha256, weights)
            return weights
        } catch {
            throw FederationClientError(.invalidResponse, "model \(version) is not valid safetensors: \(error)")
        }
    }

    /// A model's bytes, resuming with `Range` and `If-Range` when the connection breaks mid-body (at most
    /// `Self.modelResumeAttempts` further requests per download); nil on 304. The caller checks the SHA-256.
    private func download(version: Int, sha256: String, ifNoneMatch: String?) async throws -> [UInt8]? {
        let path = "/v1/models/\(version)"
        var assembly = ResumableDownload(sha256: sha256)
        while true {
            var headers = assembly.rangeHeaders
            if let ifNoneMatch, headers.isEmpty { headers.append(("If-None-Match", "\"\(ifNoneMatch)\"")) }
            var failure: String
            do {
                let response = try await exchange("GET", path, headers: headers)
                if response.status == 304, ifNoneMatch != nil, headers.count == 1 { return nil }
                if response.status == 416 {
                    // The bytes held do not fit what the coordinator has now: start over.
                    assembly.restart()
                    failure = "416 for \(headers.first?.value ?? "a range")"
                } else {
                    let answer = try checked("GET", path, response)
                    if assembly.take(answer, complete: true) { return assembly.bytes }
                    failure = "an incomplete answer (\(answer.status))"
                }
            } catch let error as CurlTransferError {
                guard let partial = error.partial, partial.status == 200 || partial.status == 206 else {
                    throw FederationClientError(
                        error.isCertificateFailure ? .untrustedServer : .transport, "GET \(path): \(error.message)")
                }
                _ = assembly.take(partial, complete: false)
                // Cut right after the last byte: the bytes are whole (the caller checks the SHA-256).
                if assembly.isWhole { return assembly.bytes }
                failure = error.message
            }
            guard assembly.resumes < Self.modelResumeAttempts else {
                throw FederationClientError(
                    .transport, "GET \(path): cut off \(assembly.resumes + 1) times, last: \(failure)")
            }
            assembly.resumes += 1
            downloadResumes += 1
            try await Task.sleep(for: .milliseconds(100 * assembly.resumes))
        }
    }

    public func submitFit(taskID: String, result: FitResult) async throws {
        _ = try await send(
            "POST", "/v1/tasks/\(taskID)/result", body: result.file.encoded(),
            contentType: WireProtocol.safetensorsMediaType)
    }

    public func submitEvaluation(taskID: String, report: EvaluationReport) async throws {
        let message = WireProtocol.EvaluationResultMessage(
            loss: report.loss, numExamples: report.numExamples, metrics: report.metrics)
        _ = try await send("POST", "/v1/tasks/\(taskID)/result", json: Array(try JSONEncoder().encode(message)))
    }

    public func reportFailure(taskID: String, message: String) async throws {
        let body = try JSONEncoder().encode(WireProtocol.TaskFailureMessage(message: message))
        _ = try await send("POST", "/v1/tasks/\(taskID)/failure", json: Array(body))
    }

    /// Leaves the federation; the token stops working.
    public func leave() async throws {
        _ = try await send("DELETE", "/v1/clients/\(try clientID())")
        credentials = nil
    }

    // MARK: Transport

    private func clientID() throws -> String {
        guard let credentials else { throw FederationClientError(.unauthenticated, "not registered") }
        return credentials.clientID
    }

    private func send(_ method: String, _ path: String, json: [UInt8], authenticated: Bool = true) async throws
        -> HTTPResponse
    {
        try await send(method, path, body: json, contentType: "application/json", authenticated: authenticated)
    }

    private func send(
        _ method: String, _ path: String, headers extra: [(name: String, value: String)] = [], body: [UInt8]? = nil,
        contentType: String? = nil, authenticated: Bool = true, timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        var headers = extra
        if authenticated {
            guard let credentials else { throw FederationClientError(.unauthenticated, "not registered") }
            headers.append(("Authorization", "Bearer \(credentials.token)"))
        }
        if let contentType { headers.append(("Content-Type", contentType)) }
        let replica = activeURL
        let request = HTTPRequest(
            method: method, url: baseURL + path, headers: headers, body: body,
            timeout: timeout ?? configuration.requestTimeout)
        let response: HTTPResponse
        do {
            response = try await http.execute(request)
        } catch let error as CurlTransferError {
            if !error.isCertificateFailure { moveOn(from: replica, leader: nil) }
            throw FederationClientError(
                error.isCertificateFailure ? .untrustedServer : .transport, "\(method) \(path): \(error.message)")
        }
        return try checked(method, path, response, from: replica)
    }

    /// One authenticated request, with libcurl's errors passed on as they are (the download resumes from them).
    private func exchange(_ method: String, _ path: String, headers extra: [(name: String, value: String)])
        async throws -> HTTPResponse
    {
        guard let credentials else { throw FederationClientError(.unauthenticated, "not registered") }
        let replica = activeURL
        do {
            let response = try await http.execute(
                HTTPRequest(
                    method: method, url: baseURL + path,
                    headers: extra + [("Authorization", "Bearer \(credentials.token)")],
                    timeout: configuration.requestTimeout))
            if response.status == 503 { noteStandby(response, from: replica) }
            return response
        } catch let error as CurlTransferError {
            if !error.isCertificateFailure, error.partial == nil { moveOn(from: replica, leader: nil) }
            throw error
        }
    }

    /// A 503 `not_leader` came from a standby: go where it says the leader is, or try the next replica.
    private func noteStandby(_ response: HTTPResponse, from replica: Int) {
        guard let detail = try? JSONDecoder().decode(WireProtocol.ErrorMessage.self, from: Data(response.body)),
            detail.error.code == "not_leader"
        else { return }
        moveOn(from: replica, leader: response.header("Rondo-Leader"))
    }

    /// After a call to `replica` failed: moves to `leader` when it is one of the configured replicas, else to
    /// the next one, unless another call already moved away from `replica` (a heartbeat and a poll failing
    /// together must not move twice, back to the dead replica).
    private func moveOn(from replica: Int, leader: String?) {
        let urls = configuration.coordinatorURLs
        guard urls.count > 1, replica == activeURL else { return }
        if let leader, let index = urls.firstIndex(of: Configuration.normalized(leader)) {
            guard index != activeURL else { return }
            activeURL = index
        } else {
            activeURL = (activeURL + 1) % urls.count
        }
        failovers += 1
    }

    /// The response if it is not an error status, else the matching `FederationClientError`.
    /// - Parameter replica: the replica that answered, when a 503 from it has not been looked at yet (nil
    ///   for answers `exchange` already examined).
    private func checked(_ method: String, _ path: String, _ response: HTTPResponse, from replica: Int? = nil) throws
        -> HTTPResponse
    {
        guard response.status >= 400 else { return response }
        if response.status == 503, let replica { noteStandby(response, from: replica) }
        let detail = try? JSONDecoder().decode(WireProtocol.ErrorMessage.self, from: Data(response.body))
        let message = detail?.error.message ?? "\(method) \(path) answered \(response.status)"
        let code: FederationClientError.Code =
            switch response.status {
            case 401: .unauthenticated
            case 429, 500...: .unavailable
            default: .refused
            }
        throw FederationClientError(
            code, status: response.status, apiCode: detail?.error.code, message,
            retryAfter: code == .unavailable ? Self.retryAfter(response) : nil)
    }

    private func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw FederationClientError(.invalidResponse, "unexpected answer: \(response.text.prefix(200))")
        }
    }
}
