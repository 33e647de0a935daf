/// The element arithmetic on raw little-endian bytes, as they arrive in an upload or sit in a spool file: the
/// streaming path checks and folds a tensor chunk by chunk without ever holding it whole.
extension TensorElements {
    /// Adds `weight × element` to `sums[i]` for each element of `raw`, a whole number of `dtype` elements.
    static func accumulate(
        raw: UnsafeRawBufferPointer, dtype: TensorDType, weight: Double, into sums: UnsafeMutablePointer<Double>
    ) {
        let count = raw.count / dtype.byteWidth
        switch dtype {
        case .float32:
            for i in 0..<count { sums[i] += weight * Double(Float(bitPattern: loadLE(raw, i, UInt32.self))) }
        case .float64:
            for i in 0..<count { sums[i] += weight * Double(bitPattern: loadLE(raw, i, UInt64.self)) }
        case .float16:
            halfTable.withUnsafeBufferPointer { table in
                for i in 0..<count { sums[i] += weight * Double(table[Int(loadLE(raw, i, UInt16.self))]) }
            }
        case .bfloat16: for i in 0..<count { sums[i] += weight * Double(bfloat(loadLE(raw, i, UInt16.self))) }
        case .int64: for i in 0..<count { sums[i] += weight * Double(loadLE(raw, i, Int64.self)) }
        case .int32: for i in 0..<count { sums[i] += weight * Double(loadLE(raw, i, Int32.self)) }
        case .int16: for i in 0..<count { sums[i] += weight * Double(loadLE(raw, i, Int16.self)) }
        case .int8: for i in 0..<count { sums[i] += weight * Double(Int8(bitPattern: raw[i])) }
        case .uint64: for i in 0..<count { sums[i] += weight * Double(loadLE(raw, i, UInt64.self)) }
        case .uint32: for i in 0..<count { sums[i] += weight * Double(loadLE(raw, i, UInt32.self)) }
        case .uint16: for i in 0..<count { sums[i] += weight * Double(loadLE(raw, i, UInt16.self)) }
        case .uint8: for i in 0..<count { sums[i] += weight * Double(raw[i]) }
        case .bool: for i in 0..<count where raw[i] != 0 { sums[i] += weight }
        case .float8E5M2, .float8E4M3: preconditionFailure("\(dtype.rawValue) is not aggregated")
        }
    }

    /// Σ (a − b)² over the elements of two equally long runs of `dtype` elements, and whether every element of
    /// `a` is finite (`b`, the base model, is trusted). Integer and boolean runs are always finite and add 0:
    /// the update norm is taken over the floating-point tensors only (see `UpdateValidator`).
    static func squaredDistance(raw a: UnsafeRawBufferPointer, base b: UnsafeRawBufferPointer, dtype: TensorDType)
        -> (finite: Bool, squared: Double)
    {
        precondition(a.count == b.count, "runs of different lengths")
        let count = a.count / dtype.byteWidth
        var squared = 0.0
        var finite = true
        func add(_ left: Double, _ right: Double) {
            let difference = left - right
            squared += difference * difference
        }
        switch dtype {
        case .float32:
            for i in 0..<count {
                let left = Float(bitPattern: loadLE(a, i, UInt32.self))
                if !left.isFinite { finite = false }
                add(Double(left), Double(Float(bitPattern: loadLE(b, i, UInt32.self))))
            }
        case .float64:
            for i in 0..<count {
                let left = Double(bitPattern: loadLE(a, i, UInt64.self))
                if !left.isFinite { finite = false }
                add(left, Double(bitPattern: loadLE(b, i, UInt64.self)))
            }
        case .float16:
            halfTable.withUnsafeBufferPointer { table in
                for i in 0..<count {
                    let left = table[Int(loadLE(a, i, UInt16.self))]
                    if !left.isFinite { finite = false }
                    add(Double(left), Double(table[Int(loadLE(b, i, UInt16.self))]))
                }
            }
        case .bfloat16:
            for i in 0..<count {
                let left = bfloat(loadLE(a, i, UInt16.self))
                if !left.isFinite { finite = false }
                add(Double(left), Double(bfloat(loadLE(b, i, UInt16.self))))
            }
        default:
            break
        }
        // A NaN anywhere makes the sum NaN, an overflow makes it infinite: either way not a finite update.
        if !squared.isFinite { finite = false }
        return (finite, squared)
    }

    @inline(__always)
    static func loadLE<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, _ index: Int, _: T.Type) -> T {
        T(littleEndian: raw.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self))
    }
}

extension Tensor {
    /// Calls `body` with the elements' little-endian bytes, as a safetensors data section holds them: the
    /// storage itself where it already has that form (every dtype on a little-endian machine), so no copy.
    public func withLittleEndianBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .float32(let values):
            #if _endian(little)
                return try values.withUnsafeBytes(body)
            #else
                return try TensorElements.bytes(of: values).withUnsafeBytes(body)
            #endif
        case .encoded(_, let bytes):
            return try bytes.withUnsafeBytes(body)
        case .shared(_, let source):
            return try source.withBytes(body)
        }
    }
}
