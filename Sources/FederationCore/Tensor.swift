/// A dense, row-major tensor.
///
/// Invariant: the product of `shape` equals the number of stored elements (a scalar has shape `[]` and one
/// element). Storage is an enum so further dtypes can be added without changing the tensor's users; today
/// every tensor Rondo aggregates is `float32`.
public struct Tensor: Sendable, Equatable {
    /// The element storage; one case per supported dtype.
    public enum Storage: Sendable, Equatable {
        case float32([Float])
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

    /// A `float32` tensor of zeros.
    public static func zeros(shape: [Int]) -> Tensor {
        Tensor(shape: shape, values: [Float](repeating: 0, count: elementCount(of: shape)))
    }

    public var dtype: TensorDType {
        switch storage {
        case .float32: .float32
        }
    }

    /// The elements as `float32`.
    public var floatValues: [Float] {
        switch storage {
        case .float32(let values): values
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
