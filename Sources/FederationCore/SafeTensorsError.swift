/// Why a safetensors payload was refused.
///
/// A struct with an open `Code` (the swift-service-lifecycle pattern), so new checks can be added without
/// breaking callers that switch on codes. `message` names the offending tensor or value for an operator.
public struct SafeTensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case truncated, headerTooLarge, headerBeyondBody, invalidHeader, duplicateName, unknownDType
            case unsupportedDType, invalidShape, invalidOffsets, offsetOutOfRange, overlappingData
            case uncoveredData, sizeMismatch, tooManyTensors, invalidMetadata, modelTooLarge
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Fewer than 8 bytes: not even the header length is present.
        public static let truncated = Code(.truncated)
        /// The declared header length is above the configured limit.
        public static let headerTooLarge = Code(.headerTooLarge)
        /// The whole payload is over what a coordinator holds in memory as one model (4 GiB − 1 bytes).
        public static let modelTooLarge = Code(.modelTooLarge)
        /// The declared header length runs past the end of the payload.
        public static let headerBeyondBody = Code(.headerBeyondBody)
        /// The header is not UTF-8 JSON, not an object, or a tensor entry lacks a field.
        public static let invalidHeader = Code(.invalidHeader)
        /// Two tensors share a name.
        public static let duplicateName = Code(.duplicateName)
        /// A dtype the format does not define.
        public static let unknownDType = Code(.unknownDType)
        /// A dtype the format defines but Rondo does not aggregate yet.
        public static let unsupportedDType = Code(.unsupportedDType)
        /// A shape that is not a list of non-negative integers.
        public static let invalidShape = Code(.invalidShape)
        /// `data_offsets` is not `[begin, end]` with `begin <= end`.
        public static let invalidOffsets = Code(.invalidOffsets)
        /// A tensor's data ends past the end of the payload.
        public static let offsetOutOfRange = Code(.offsetOutOfRange)
        /// Two tensors' byte ranges overlap.
        public static let overlappingData = Code(.overlappingData)
        /// Bytes of the data section belong to no tensor (a gap or trailing bytes).
        public static let uncoveredData = Code(.uncoveredData)
        /// shape × dtype width differs from the tensor's byte length.
        public static let sizeMismatch = Code(.sizeMismatch)
        /// More tensors than the configured limit.
        public static let tooManyTensors = Code(.tooManyTensors)
        /// `__metadata__` is not an object of strings.
        public static let invalidMetadata = Code(.invalidMetadata)

        /// A stable snake_case identifier, used in API error bodies.
        public var description: String {
            var out = ""
            for character in base.rawValue {
                if character.isUppercase {
                    out += "_" + character.lowercased()
                } else {
                    out.append(character)
                }
            }
            return out
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "safetensors \(code): \(message)" }
}
