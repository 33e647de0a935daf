/// Read-only little-endian tensor bytes kept alive by another owner: the coordinator keeps each model version
/// once, as the encoding it sends to clients, and the engine reads the tensors in place from it instead of
/// holding a decoded copy beside it.
///
/// Invariant: the bytes never change while any value refers to them.
public protocol TensorByteSource: Sendable {
    /// Bytes the source holds.
    var byteCount: Int { get }
    /// Calls `body` with the bytes; the pointer is valid only inside `body`.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
