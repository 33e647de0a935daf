/// Reading and writing a tensor's elements as numbers, for every dtype Rondo aggregates.
///
/// Arithmetic is done in `Double` whatever the dtype (the wide accumulator), and results are written back in
/// the tensor's own dtype:
/// - floating point (`F16`, `BF16`, `F32`, `F64`): rounded to nearest, ties to even;
/// - integers (`I8`…`I64`, `U8`…`U64`): rounded to nearest, ties away from zero, clamped to the type's range.
///   A counter such as BatchNorm's `num_batches_tracked` thus becomes the example-weighted mean of the
///   clients' counts: every client counts from the same base model, so the mean is the typical count a
///   client reached, and it stays a whole number of batches;
/// - `BOOL`: true when the weighted mean is at least one half (a weighted majority).
///
/// `F8_E5M2` and `F8_E4M3` are not aggregated: with 2–3 mantissa bits an average is mostly rounding error.
enum TensorElements {
    /// Adds `weight × element` to `sums[i]` for every element.
    /// - Precondition: `sums.count == tensor.elementCount`.
    static func accumulate(_ tensor: Tensor, weight: Double, into sums: UnsafeMutableBufferPointer<Double>) {
        precondition(sums.count == tensor.elementCount)
        guard let target = sums.baseAddress else { return }
        tensor.withLittleEndianBytes { raw in
            accumulate(raw: raw, dtype: tensor.dtype, weight: weight, into: target)
        }
    }

    /// The tensor holding `sums[i] × scale`, written back in `dtype` by the rules above.
    static func tensor(fromSums sums: [Double], scale: Double, shape: [Int], dtype: TensorDType) -> Tensor {
        let count = sums.count
        switch dtype {
        case .float32:
            return Tensor(shape: shape, values: sums.map { Float($0 * scale) })
        case .float64:
            return encoded(shape, dtype, count) { i, out in store((sums[i] * scale).bitPattern.littleEndian, out, i) }
        case .float16:
            return encoded(shape, dtype, count) { i, out in
                store(Float16(sums[i] * scale).bitPattern.littleEndian, out, i)
            }
        case .bfloat16:
            return encoded(shape, dtype, count) { i, out in
                store(bfloatBits(sums[i] * scale).littleEndian, out, i)
            }
        case .int64: return integers(sums, scale, shape, dtype, Int64.self)
        case .int32: return integers(sums, scale, shape, dtype, Int32.self)
        case .int16: return integers(sums, scale, shape, dtype, Int16.self)
        case .int8: return integers(sums, scale, shape, dtype, Int8.self)
        case .uint64: return integers(sums, scale, shape, dtype, UInt64.self)
        case .uint32: return integers(sums, scale, shape, dtype, UInt32.self)
        case .uint16: return integers(sums, scale, shape, dtype, UInt16.self)
        case .uint8: return integers(sums, scale, shape, dtype, UInt8.self)
        case .bool:
            return encoded(shape, dtype, count) { i, out in out[i] = sums[i] * scale >= 0.5 ? 1 : 0 }
        case .float8E5M2, .float8E4M3:
            preconditionFailure("\(dtype.rawValue) is not aggregated")
        }
    }

    /// True when no element is NaN or infinite (always, for integer and boolean dtypes).
    static func allFinite(_ tensor: Tensor) -> Bool {
        guard tensor.dtype.isFloatingPoint else { return true }
        return squaredDistance(tensor, nil).finite
    }

    /// Σ (a − b)² over the elements (Σ a² when `b` is nil), and whether every element of `a` and `b` is finite.
    /// Computed in `Double`: squares of any float16/bfloat16/float32 values cannot overflow it.
    static func squaredDistance(_ a: Tensor, _ b: Tensor?) -> (finite: Bool, squared: Double) {
        if case .float32(let left) = a.storage {
            switch b?.storage {
            case nil: return float32Distance(left, nil)
            case .float32(let right)?: return float32Distance(left, right)
            default: break
            }
        }
        // Tensors read in place (a served model) are compared on their bytes, without converting them whole.
        if let b, a.isShared || b.isShared, a.dtype.isFloatingPoint {
            return a.withLittleEndianBytes { left in
                b.withLittleEndianBytes { right in squaredDistance(raw: left, base: right, dtype: a.dtype) }
            }
        }
        let left = a.doubleValues
        let right = b?.doubleValues
        var squared = 0.0
        var finite = true
        for i in left.indices {
            let difference = left[i] - (right?[i] ?? 0)
            if !difference.isFinite || !left[i].isFinite || !(right?[i].isFinite ?? true) { finite = false }
            squared += difference * difference
        }
        return (finite, squared)
    }

    /// The float32 case without conversions: one pass, no allocation (the usual model's hot path).
    private static func float32Distance(_ a: [Float], _ b: [Float]?) -> (finite: Bool, squared: Double) {
        var squared = 0.0
        var finite = true
        for i in a.indices {
            let right = b?[i] ?? 0
            if !a[i].isFinite || !right.isFinite { finite = false }
            let difference = Double(a[i]) - Double(right)
            squared += difference * difference
        }
        return (finite, squared)
    }

    // MARK: Bytes

    static func float32s(from bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { float32s(from: $0) }
    }

    /// Little-endian float32 values from unaligned bytes: one copy on a little-endian machine.
    static func float32s(from raw: UnsafeRawBufferPointer) -> [Float] {
        let count = raw.count / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            #if _endian(little)
                if count > 0 {
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * 4)]))
                }
            #else
                for i in 0..<count { buffer[i] = Float(bitPattern: loadLE(raw, i, UInt32.self)) }
            #endif
            initialized = count
        }
    }

    static func bytes(of values: [Float]) -> [UInt8] {
        encodedBytes(values.count * 4) { out in
            for i in values.indices { store(values[i].bitPattern.littleEndian, out, i) }
        }
    }

    @inline(__always)
    private static func store<T: FixedWidthInteger>(_ value: T, _ out: UnsafeMutableRawBufferPointer, _ index: Int) {
        out.storeBytes(of: value, toByteOffset: index * MemoryLayout<T>.size, as: T.self)
    }

    private static func encodedBytes(_ count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    private static func encoded(
        _ shape: [Int], _ dtype: TensorDType, _ count: Int, _ element: (Int, UnsafeMutableRawBufferPointer) -> Void
    ) -> Tensor {
        let bytes = encodedBytes(count * dtype.byteWidth) { out in
            for i in 0..<count { element(i, out) }
        }
        return Tensor(shape: shape, dtype: dtype, littleEndianBytes: bytes)
    }

    private static func integers<T: FixedWidthInteger>(
        _ sums: [Double], _ scale: Double, _ shape: [Int], _ dtype: TensorDType, _: T.Type
    ) -> Tensor {
        let (low, high) = (Double(T.min), Double(T.max))
        return encoded(shape, dtype, sums.count) { i, out in
            let mean = (sums[i] * scale).rounded(.toNearestOrAwayFromZero)
            // `Double(T.max)` rounds up for 64-bit types; clamp below it, then convert exactly.
            let value: T = mean >= high ? T.max : mean <= low ? T.min : T(mean)
            store(value.littleEndian, out, i)
        }
    }

    // MARK: Half and bfloat16

    /// Every float16 bit pattern as a Float (256 KiB, built once): reading `F16` costs a load instead of a
    /// software conversion, which made the `F16` fold several times slower than the `BF16` one.
    static let halfTable: [Float] = (0...UInt16.max).map { Float(Float16(bitPattern: $0)) }

    @inline(__always)
    static func bfloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// The bfloat16 nearest to `value` (ties to even), rounded once: going through `Float` first could make a
    /// value just above (or below) a halfway point land exactly on it and then round the wrong way.
    static func bfloatBits(_ value: Double) -> UInt16 {
        let single = Float(value)
        let bits = single.bitPattern
        if single.isFinite, bits & 0xFFFF == 0x8000, Double(single) != value {
            // A halfway point only because of the rounding to Float: the true value lies beyond it.
            let truncated = UInt16(truncatingIfNeeded: bits >> 16)  // toward zero in magnitude
            return abs(value) > abs(Double(single)) ? truncated + 1 : truncated
        }
        return bfloatBits(single)
    }

    /// The bfloat16 nearest to `value` (ties to even); NaN stays a (quiet) NaN.
    static func bfloatBits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let roundingBias = ((bits >> 16) & 1) &+ 0x7FFF
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
}

extension TensorDType {
    /// `F16`, `BF16`, `F32`, `F64` (and the 8-bit floats, which are not aggregated).
    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64, .float8E5M2, .float8E4M3: true
        default: false
        }
    }

    /// Whether Rondo averages tensors of this dtype (all but the 8-bit floats).
    public var isAggregated: Bool { self != .float8E5M2 && self != .float8E4M3 }
}
