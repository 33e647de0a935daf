/// A strategy or parameter an operator named that Rondo cannot run.
public struct StrategyConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// No strategy has that name.
        case unknownStrategy = "unknown_strategy"
        /// The strategy takes no parameter of that name.
        case unknownParameter = "unknown_parameter"
        /// Not a finite number, or outside the parameter's range.
        case invalidValue = "invalid_value"
        /// A parameter the strategy cannot run without was not given.
        case missingParameter = "missing_parameter"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
