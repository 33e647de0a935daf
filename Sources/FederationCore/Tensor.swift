/// A dense, row-major tensor of one dtype.
///
/// Invariant: the product of `shape` equals the number of stored elements (a scalar has shape `[]` and one
/// element). `float32`, the dtype most models train in, is kept as `[Float]`; every other dtype is kept as its
/// little-endian safetensors bytes (half the memory for `F16`/`BF16`, no conversion on the way in or out), and
/// read through `TensorElements` where a computation needs numbers. A tensor of any dtype may also view bytes
/// another owner keeps (`shared`): how the coordinator keeps each model once, as the encoding it serves.
public struct Tensor: Sendable, Equatable {
    /// The element storage.
    public enum Storage: Sendable {
        case float32([Float])
        /// Any other dtype: `byteWidth × elementCount` little-endian bytes, exactly as in a safetensors file.
        case encoded(TensorDType, [UInt8])
        /// Any dtype, read in place from little-endian bytes another owner keeps alive.
        case shared(TensorDType, any TensorByteSource)
    }

    public let shape: [Int]
    public let storage: Storage

    /// Creates a `float32` tensor.
    /// - Precondition: `values.count` equals the product of `shape` and no dimension is negative.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(
            Tensor.elementCount(of: shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.storage = .float32(values)
    }

    /// Creates a tensor of `dtype` from its little-endian bytes (as a safetensors file holds them).
    /// - Precondition: `bytes.count` is the element count times the dtype's width.
    public init(shape: [Int], dtype: TensorDType, littleEndianBytes bytes: [UInt8]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(
            Tensor.elementCount(of: shape) * dtype.byteWidth == bytes.count,
            "shape \(shape) × \(dtype.rawValue) is not \(bytes.count) bytes")
        self.shape = shape
        if dtype == .float32 {
            self.storage = .float32(TensorElements.float32s(from: bytes))
        } else {
            self.storage = .encoded(dtype, bytes)
        }
    }

    /// A tensor of `dtype` holding `values` converted by the rules averages are written back with (rounded to
    /// nearest; integers clamped to their range; `BOOL` true from one half up; see `TensorElements`).
    /// - Precondition: `values.count` equals the product of `shape`; `dtype.isAggregated`.
    public init(shape: [Int], dtype: TensorDType, converting values: [Double]) {
        precondition(
            Tensor.elementCount(of: shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        self = TensorElements.tensor(fromSums: values, scale: 1, shape: shape, dtype: dtype)
    }

    /// A tensor of `dtype` reading its elements in place from `source`, without a copy.
    /// - Precondition: `source.byteCount` is the element count times the dtype's width.
    public init(shape: [Int], dtype: TensorDType, viewing source: any TensorByteSource) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(
            Tensor.elementCount(of: shape) * dtype.byteWidth == source.byteCount,
            "shape \(shape) × \(dtype.rawValue) is not \(source.byteCount) bytes")
        self.shape = shape
        self.storage = .shared(dtype, source)
    }

    /// Equal shapes, dtypes and elements (for `F32`, compared as numbers, as `[Float]` compares them; for the
    /// other dtypes, byte for byte), whatever the storage.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape, lhs.dtype == rhs.dtype else { return false }
        if case .float32(let left) = lhs.storage, case .float32(let right) = rhs.storage { return left == right }
        if lhs.dtype == .float32 { return lhs.floatValues == rhs.floatValues }
        return lhs.withLittleEndianBytes { left in rhs.withLittleEndianBytes { right in left.elementsEqual(right) } }
    }

    /// Whether the elements are read in place from another owner's bytes.
    public var isShared: Bool {
        if case .shared = storage { return true }
        return false
    }

    /// A `float32` tensor of zeros.
    public static func zeros(shape: [Int]) -> Tensor {
        Tensor(shape: shape, values: [Float](repeating: 0, count: elementCount(of: shape)))
    }

    public var dtype: TensorDType {
        switch storage {
        case .float32: .float32
        case .encoded(let dtype, _), .shared(let dtype, _): dtype
        }
    }

    /// The elements converted to `Float` (exact for `F16`, `BF16` and small integers; rounded otherwise).
    public var floatValues: [Float] {
        switch storage {
        case .float32(let values): values
        case .shared(.float32, _): withLittleEndianBytes { TensorElements.float32s(from: $0) }
        case .encoded, .shared: doubleValues.map { Float($0) }
        }
    }

    /// The elements converted to `Double` (exact for every float dtype and integers up to 2^53).
    public var doubleValues: [Double] {
        var values = [Double](repeating: 0, count: elementCount)
        values.withUnsafeMutableBufferPointer { target in
            TensorElements.accumulate(self, weight: 1, into: target)
        }
        return values
    }

    /// The little-endian bytes of the elements, as a safetensors data section holds them.
    public var littleEndianBytes: [UInt8] {
        switch storage {
        case .float32(let values): TensorElements.bytes(of: values)
        case .encoded(_, let bytes): bytes
        case .shared(_, let source): source.withBytes { Array($0) }
        }
    }

    public var elementCount: Int { Tensor.elementCount(of: shape) }

    /// Size of the tensor's data in a safetensors body.
    public var byteCount: Int { elementCount * dtype.byteWidth }

    /// The product of the dimensions (1 for a scalar).
    public static func elementCount(of shape: [Int]) -> Int {
        shape.reduce(1, *)
    }
}
