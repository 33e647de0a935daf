/// A tensor with its parameter name, as it appears in a model's state dict.
public struct NamedTensor: Sendable, Equatable {
    public var name: String
    public var tensor: Tensor

    public init(name: String, tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// The parameters of a model: named tensors, kept sorted by name.
///
/// Sorted order gives every model a canonical layout, so two models "have the same layout" exactly when their
/// names, shapes and dtypes agree position by position, and encoding is deterministic (the same weights always
/// produce the same bytes and so the same SHA-256).
public struct ModelWeights: Sendable, Equatable {
    /// The tensors, sorted by name; names are unique.
    public let tensors: [NamedTensor]

    /// Creates weights from tensors in any order.
    /// - Precondition: names are unique.
    public init(_ tensors: [NamedTensor]) {
        let sorted = tensors.sorted { $0.name < $1.name }
        for index in sorted.indices.dropFirst() {
            precondition(sorted[index - 1].name != sorted[index].name, "duplicate tensor name \(sorted[index].name)")
        }
        self.tensors = sorted
    }

    /// Creates weights from a name → tensor dictionary.
    public init(_ tensors: [String: Tensor]) {
        self.init(tensors.map { NamedTensor(name: $0.key, tensor: $0.value) })
    }

    public var names: [String] { tensors.map(\.name) }

    /// Bytes of tensor data (without a file header).
    public var dataByteCount: Int { tensors.reduce(0) { $0 + $1.tensor.byteCount } }

    public subscript(name: String) -> Tensor? {
        var low = 0
        var high = tensors.count
        while low < high {
            let mid = (low + high) / 2
            if tensors[mid].name < name { low = mid + 1 } else { high = mid }
        }
        return low < tensors.count && tensors[low].name == name ? tensors[low].tensor : nil
    }

    /// True when both models have the same names, shapes and dtypes.
    public func hasSameLayout(as other: ModelWeights) -> Bool {
        tensors.count == other.tensors.count
            && zip(tensors, other.tensors).allSatisfy {
                $0.name == $1.name && $0.tensor.shape == $1.tensor.shape && $0.tensor.dtype == $1.tensor.dtype
            }
    }
}
