/// A value bound to or read from a statement, in the four storage classes both backends share.
///
/// PostgreSQL's types map onto it as the store's schema uses them: `BIGINT` is `integer`, `DOUBLE PRECISION`
/// is `real`, `TEXT` is `text` and `BYTEA` is `blob`.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var int: Int? {
        if case .integer(let value) = self { return Int(value) }
        return nil
    }

    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }

    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    public var bytes: [UInt8]? {
        if case .blob(let value) = self { return value }
        return nil
    }
}
