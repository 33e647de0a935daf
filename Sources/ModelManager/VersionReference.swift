/// How operators name a checkpoint version, everywhere a version is taken (CLI arguments, admin API paths):
/// `v12` or `12`, one of the refs the coordinator keeps (`current`, `best`), or a tag (`production`).
///
/// Every output prints versions as `vN`, so what a command prints can be pasted into the next one.
public enum VersionReference: Sendable, Equatable, CustomStringConvertible {
    case version(Int)
    case ref(CheckpointRef)
    case tag(String)

    /// Parses `vN`, `N`, `current`, `best`, or a tag name ([A-Za-z0-9._-], 1–64 characters).
    /// - Throws: `CheckpointStoreError` `.notFound` for text that can name nothing (empty, too long, other
    ///   characters, a negative number).
    public init(parsing text: String) throws(CheckpointStoreError) {
        if let number = Self.versionNumber(text) {
            self = .version(number)
        } else if let ref = CheckpointRef(rawValue: text) {
            self = .ref(ref)
        } else if CheckpointStore.isValidTagName(text) {
            self = .tag(text)
        } else {
            throw CheckpointStoreError(
                .notFound,
                "\(text.count > 64 ? String(text.prefix(64)) + "…" : text) names no version: use vN, N, "
                    + "current, best or a tag")
        }
    }

    /// The digits of text that reads as a version (`12`, `v12`, `V12`), however many.
    static func versionDigits(_ text: String) -> Substring? {
        let digits = text.first == "v" || text.first == "V" ? text.dropFirst() : Substring(text)
        return !digits.isEmpty && digits.allSatisfy({ $0.isASCII && $0.isNumber }) ? digits : nil
    }

    /// `12` and `v12` (also `V12`) are version 12.
    private static func versionNumber(_ text: String) -> Int? {
        guard let digits = versionDigits(text), digits.count <= 18 else { return nil }
        return Int(digits)
    }

    public var description: String {
        switch self {
        case .version(let number): "v\(number)"
        case .ref(let ref): ref.rawValue
        case .tag(let name): name
        }
    }
}

extension CheckpointStore {
    /// The version a reference names now.
    /// - Throws: `CheckpointStoreError` `.notFound` when no such version exists or the ref or tag points nowhere.
    public func resolve(_ reference: VersionReference) async throws -> Int {
        let version: Int?
        switch reference {
        case .version(let number): version = try await checkpoint(version: number) == nil ? nil : number
        case .ref(let ref): version = try await refVersion(ref)
        case .tag(let name): version = try await refVersion(named: name)
        }
        guard let version else {
            throw CheckpointStoreError(.notFound, "no checkpoint \(reference)")
        }
        return version
    }

    /// Parses and resolves in one step (`rondo checkpoints show production`).
    public func resolve(_ text: String) async throws -> Int {
        try await resolve(try VersionReference(parsing: text))
    }
}
