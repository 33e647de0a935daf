/// The identifier the coordinator gives a client when it registers.
public struct ClientID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: ClientID, rhs: ClientID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The identifier of one task handed to one client: `r<round>-<f|e><sequence>`.
///
/// The round is part of the id so a result for a task of a round that closed long ago is recognised as late
/// rather than unknown, without the core keeping every old task.
public struct TaskID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    init(round: Int, kind: TaskKind, sequence: Int) {
        rawValue = "r\(round)-\(kind == .fit ? "f" : "e")\(sequence)"
    }

    /// The round encoded in the id, if the id has Rondo's form.
    public var round: Int? {
        guard rawValue.hasPrefix("r"), let dash = rawValue.firstIndex(of: "-") else { return nil }
        return Int(rawValue[rawValue.index(after: rawValue.startIndex)..<dash])
    }

    public var description: String { rawValue }
}

/// What a task asks a client to do.
public enum TaskKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Train on local data starting from the task's model; answer with updated weights.
    case fit
    /// Evaluate the task's model on local held-out data; answer with loss and metrics.
    case evaluate
}
