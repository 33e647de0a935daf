/// The JSON messages of Rondo's native client protocol (`/v1`), shared by the coordinator and the SDK so the
/// two cannot drift. Field names are snake_case on the wire. Tensors never travel as JSON: fit results and
/// models are safetensors (`application/vnd.safetensors`).
public enum WireProtocol {
    /// The media type of models and fit results.
    public static let safetensorsMediaType = "application/vnd.safetensors"
    /// `__metadata__` key of a fit result carrying the number of training examples (decimal string).
    public static let numExamplesKey = "num_examples"
    /// `__metadata__` key of a fit result carrying training metrics as a JSON object string.
    public static let metricsKey = "metrics"

    /// `POST /v1/clients` body.
    public struct RegistrationRequest: Codable, Sendable, Equatable {
        public var name: String
        public var labels: [String: String]?
        /// A per-site secret (16–256 printable ASCII characters) the client registers under every time: the
        /// coordinator keeps only its hash and answers a second registration with the same key with the same
        /// client id (and a new token), so a restarted site is the same client. Optional.
        public var identityKey: String?

        public init(name: String, labels: [String: String]? = nil, identityKey: String? = nil) {
            self.name = name
            self.labels = labels
            self.identityKey = identityKey
        }

        enum CodingKeys: String, CodingKey {
            case name, labels
            case identityKey = "identity_key"
        }

        /// Shortest and longest identity key.
        public static let identityKeyLength = 16...256
    }

    /// `POST /v1/clients` answer (201).
    public struct RegistrationResponse: Codable, Sendable, Equatable {
        public var clientID: String
        /// Bearer token for every later call of this client; shown once, stored by the coordinator as a hash.
        public var token: String
        /// How often a client should heartbeat while it trains.
        public var heartbeatIntervalSeconds: Double

        public init(clientID: String, token: String, heartbeatIntervalSeconds: Double) {
            self.clientID = clientID
            self.token = token
            self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        }

        enum CodingKeys: String, CodingKey {
            case clientID = "client_id"
            case token
            case heartbeatIntervalSeconds = "heartbeat_interval_seconds"
        }
    }

    /// `GET /v1/clients/{id}/tasks/next` answer (200).
    public struct TaskMessage: Codable, Sendable, Equatable {
        public var taskID: String
        public var round: Int
        /// `fit` or `evaluate`.
        public var kind: TaskKind
        public var modelVersion: Int
        public var modelSHA256: String
        public var config: [String: String]
        /// Seconds left until the task's deadline when the coordinator answered.
        public var deadlineSeconds: Double
        /// W3C trace context of the task's span, so the client's spans join the round's trace.
        public var traceparent: String?

        public init(
            taskID: String, round: Int, kind: TaskKind, modelVersion: Int, modelSHA256: String,
            config: [String: String],
            deadlineSeconds: Double, traceparent: String? = nil
        ) {
            self.taskID = taskID
            self.round = round
            self.kind = kind
            self.modelVersion = modelVersion
            self.modelSHA256 = modelSHA256
            self.config = config
            self.deadlineSeconds = deadlineSeconds
            self.traceparent = traceparent
        }

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id"
            case round, kind, config, traceparent
            case modelVersion = "model_version"
            case modelSHA256 = "model_sha256"
            case deadlineSeconds = "deadline_seconds"
        }
    }

    /// `POST /v1/tasks/{id}/result` body for an evaluate task.
    public struct EvaluationResultMessage: Codable, Sendable, Equatable {
        public var loss: Double
        public var numExamples: Int
        public var metrics: [String: Double]?

        public init(loss: Double, numExamples: Int, metrics: [String: Double]? = nil) {
            self.loss = loss
            self.numExamples = numExamples
            self.metrics = metrics
        }

        enum CodingKeys: String, CodingKey {
            case loss, metrics
            case numExamples = "num_examples"
        }
    }

    /// `POST /v1/tasks/{id}/failure` body: the client could not complete the task.
    public struct TaskFailureMessage: Codable, Sendable, Equatable {
        public var message: String

        public init(message: String) {
            self.message = message
        }
    }

    /// The body of every error answer: `{"error": {"code": …, "message": …}}`.
    public struct ErrorMessage: Codable, Sendable, Equatable {
        public struct Detail: Codable, Sendable, Equatable {
            /// A stable snake_case identifier; scripts switch on this, never on the message.
            public var code: String
            public var message: String
        }

        public var error: Detail

        public init(code: String, message: String) {
            self.error = Detail(code: code, message: message)
        }
    }

    /// `GET /v1/status` answer.
    public struct StatusMessage: Codable, Sendable, Equatable {
        public var phase: RoundPhase
        public var round: Int
        public var modelVersion: Int
        public var modelSHA256: String
        public var clientsRegistered: Int
        public var clientsConnected: Int
        /// Connected clients needed before a round starts.
        public var clientsRequired: Int
        /// Accepted fit results a round needs (`min_fit_results`).
        public var quorum: Int
        public var committedRounds: Int
        public var failedRounds: Int
        public var maxRounds: Int?
        /// True while an operator has paused the federation: the open round finishes, no new one starts.
        public var paused: Bool
        /// True while the coordinator finishes its round before stopping (SIGTERM).
        public var draining: Bool

        public init(
            phase: RoundPhase, round: Int, modelVersion: Int, modelSHA256: String, clientsRegistered: Int,
            clientsConnected: Int, clientsRequired: Int, quorum: Int, committedRounds: Int, failedRounds: Int,
            maxRounds: Int?, paused: Bool = false, draining: Bool = false
        ) {
            self.paused = paused
            self.draining = draining
            self.phase = phase
            self.round = round
            self.modelVersion = modelVersion
            self.modelSHA256 = modelSHA256
            self.clientsRegistered = clientsRegistered
            self.clientsConnected = clientsConnected
            self.clientsRequired = clientsRequired
            self.quorum = quorum
            self.committedRounds = committedRounds
            self.failedRounds = failedRounds
            self.maxRounds = maxRounds
        }

        enum CodingKeys: String, CodingKey {
            case phase, round, quorum, paused, draining
            case modelVersion = "model_version"
            case modelSHA256 = "model_sha256"
            case clientsRegistered = "clients_registered"
            case clientsConnected = "clients_connected"
            case clientsRequired = "clients_required"
            case committedRounds = "committed_rounds"
            case failedRounds = "failed_rounds"
            case maxRounds = "max_rounds"
        }
    }
}
