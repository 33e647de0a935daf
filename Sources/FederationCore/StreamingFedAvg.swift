/// Federated averaging (McMahan et al., 2017) folded one update at a time.
///
/// Each accepted update is added to a running sum weighted by its `num_examples` the moment it arrives, so
/// memory stays O(model) however many clients answer, and the work of a round is spread over its arrivals
/// instead of piling up at the deadline. Sums are kept in double precision whatever the tensors' dtype (`F16`,
/// `BF16`, `F32`, `F64`, integers, `BOOL`), and each average is written back in its tensor's own dtype by the
/// rules of `TensorElements`: the result is independent of arrival order up to that final rounding.
///
/// With a `WeightCap`, no client holds more than the cap's share of the average. Only the heaviest updates can
/// be clipped, so the `clippedClientBound` heaviest so far are kept aside unfolded; an update is folded, at its
/// full weight, once enough heavier ones arrived that it can never be clipped, and `average()` adds the kept
/// ones at their clipped weights. Nothing is folded and taken back, so the result is exact whatever the
/// weights. The kept updates are payloads (`UpdatePayload`): for uploads, spool files on disk, so memory stays
/// O(model) under a cap too; disk holds up to ⌈1/share⌉ updates.
///
/// Updates are read through `UpdatePayload` chunk by chunk: the fold never needs an update whole in memory.
public struct StreamingFedAvg: Sendable {
    private let layout: ModelWeights
    private let weightCap: WeightCap?
    /// Each tensor's dtype, in layout order.
    private let dtypes: [TensorDType]
    /// One double per parameter, allocated at the first fold (not when the round opens: the server may still
    /// be letting go of the previous model then). Each tensor's sums are kept in blocks of `blockElements`, so
    /// `takeAverage()` can free them block by block as it writes the average: the sums and the result are
    /// then never both whole in memory, not even for one big tensor.
    private var sums: [[[Double]]] = []
    /// Doubles per block of sums: by default 2^20 (8 MiB), large enough that a block is its own mapping the
    /// allocator returns to the system when it is freed.
    private let blockElements: Int
    /// Every folded update's weight, in arrival order (what the cap's level is computed from).
    private var weights: [Double] = []
    /// The heaviest updates so far, kept only under a weight cap: the only ones the cap can clip.
    private var heaviest: [(weight: Double, update: any UpdatePayload, shrink: Double)] = []
    /// Weight already in `sums` (everything but the updates kept aside).
    private var foldedWeight: Double = 0
    /// Total weight folded so far (the sum of `num_examples`, before any cap).
    public private(set) var totalExamples: Double = 0
    /// Number of updates folded so far.
    public var count: Int { weights.count }

    /// Starts an empty average for models laid out like `layout`, optionally capping any client's share.
    /// `layout` is the round's base model: a clipped fold (`shrink` < 1) moves an update towards it.
    public init(layout: ModelWeights, weightCap: WeightCap? = nil) {
        self.init(layout: layout, weightCap: weightCap, blockElements: 1 << 20)
    }

    /// An empty average whose sums are kept in blocks of `blockElements` doubles (tests use tiny blocks).
    init(layout: ModelWeights, weightCap: WeightCap?, blockElements: Int) {
        precondition(blockElements > 0)
        self.blockElements = blockElements
        self.layout = layout
        self.weightCap = weightCap
        self.dtypes = layout.tensors.map(\.tensor.dtype)
    }

    /// Adds one client's weights, weighted by the number of examples it trained on.
    /// - Precondition: `weights` has the layout's names, shapes and dtypes (run `UpdateValidator` first) and
    ///   `numExamples > 0`.
    public mutating func fold(_ weights: ModelWeights, numExamples: Int) {
        precondition(weights.hasSameLayout(as: layout), "update layout differs from the base model")
        // Weights in memory cannot fail to read.
        try! fold(payload: weights, numExamples: numExamples)
    }

    /// Adds one checked update, weighted by the number of examples it trained on.
    /// - Precondition: the payload has the layout's names, shapes and dtypes (it passed a check against the
    ///   base model) and `numExamples > 0`.
    /// - Throws: when the payload cannot be read. The sums may then hold part of it: the average is unusable
    ///   and the round must fail.
    /// - Parameter shrink: in (0, 1]: the update is folded as base + shrink·(update − base), its distance to the
    ///   base model scaled down (norm clipping); 1 folds it as it is.
    public mutating func fold(payload: any UpdatePayload, numExamples: Int, shrink: Double = 1) throws {
        precondition(numExamples > 0, "an update must carry a positive example count")
        precondition(shrink > 0 && shrink <= 1, "shrink must be in (0, 1]")
        if sums.isEmpty { sums = Self.zeros(for: layout, blockElements: blockElements) }
        let weight = Double(numExamples)
        totalExamples += weight
        self.weights.append(weight)
        guard let weightCap else {
            try addUpdate(payload, weight: weight, shrink: shrink, into: &sums)
            foldedWeight += weight
            return
        }
        if heaviest.count < weightCap.clippedClientBound {
            heaviest.append((weight, payload, shrink))
        } else if let lightest = heaviest.indices.min(by: { heaviest[$0].weight < heaviest[$1].weight }),
            heaviest[lightest].weight < weight
        {
            // The evicted update has `clippedClientBound` heavier ones now: it can never be clipped.
            let evicted = heaviest[lightest]
            heaviest[lightest] = (weight, payload, shrink)
            try addUpdate(evicted.update, weight: evicted.weight, shrink: evicted.shrink, into: &sums)
            foldedWeight += evicted.weight
        } else {
            try addUpdate(payload, weight: weight, shrink: shrink, into: &sums)
            foldedWeight += weight
        }
    }

    /// Adds `weight`·(base + shrink·(update − base)) = weight·shrink·update + weight·(1 − shrink)·base.
    private func addUpdate(_ update: any UpdatePayload, weight: Double, shrink: Double, into sums: inout [[[Double]]])
        throws
    {
        try Self.add(update, weight: weight * shrink, into: &sums, dtypes: dtypes, blockElements: blockElements)
        if shrink < 1 {
            try Self.add(
                layout, weight: weight * (1 - shrink), into: &sums, dtypes: dtypes, blockElements: blockElements)
        }
    }

    private static func zeros(for layout: ModelWeights, blockElements: Int) -> [[[Double]]] {
        layout.tensors.map { named in
            let count = named.tensor.elementCount
            return stride(from: 0, to: count, by: blockElements).map {
                [Double](repeating: 0, count: min(blockElements, count - $0))
            }
        }
    }

    private static func add(
        _ update: any UpdatePayload, weight: Double, into sums: inout [[[Double]]], dtypes: [TensorDType],
        blockElements: Int
    ) throws {
        for index in sums.indices {
            let dtype = dtypes[index]
            let count = sums[index].reduce(0) { $0 + $1.count }
            var filled = 0
            try update.forEachChunk(ofTensor: index) { raw in
                let chunkCount = raw.count / dtype.byteWidth
                precondition(filled + chunkCount <= count, "update tensor longer than the base model's")
                // A chunk may straddle blocks: add it piece by piece.
                var done = 0
                while done < chunkCount {
                    let block = (filled + done) / blockElements
                    let within = (filled + done) % blockElements
                    let taken = min(chunkCount - done, blockElements - within)
                    let piece = UnsafeRawBufferPointer(
                        rebasing: raw[(done * dtype.byteWidth)..<((done + taken) * dtype.byteWidth)])
                    sums[index][block].withUnsafeMutableBufferPointer { sum in
                        TensorElements.accumulate(
                            raw: piece, dtype: dtype, weight: weight, into: sum.baseAddress! + within)
                    }
                    done += taken
                }
                filled += chunkCount
            }
            precondition(filled == count, "update tensor shorter than the base model's")
        }
    }

    /// One tensor's average from its blocks of sums, freeing each block once its part is written.
    private static func average(of blocks: inout [[Double]], scale: Double, like base: Tensor) -> Tensor {
        let dtype = base.dtype
        defer { blocks = [] }
        if dtype == .float32 {
            let values = [Float](unsafeUninitializedCapacity: base.elementCount) { out, initialized in
                var offset = 0
                for block in blocks.indices {
                    blocks[block].withUnsafeBufferPointer { sums in
                        for i in sums.indices { out[offset + i] = Float(sums[i] * scale) }
                    }
                    offset += blocks[block].count
                    blocks[block] = []
                }
                initialized = offset
            }
            return Tensor(shape: base.shape, values: values)
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: base.byteCount) { out, initialized in
            var offset = 0
            for block in blocks.indices {
                let part = TensorElements.tensor(
                    fromSums: blocks[block], scale: scale, shape: [blocks[block].count], dtype: dtype)
                blocks[block] = []
                part.withLittleEndianBytes { raw in
                    UnsafeMutableRawBufferPointer(
                        rebasing: UnsafeMutableRawBufferPointer(out)[offset..<(offset + raw.count)]
                    )
                    .copyMemory(from: raw)
                    offset += raw.count
                }
            }
            initialized = offset
        }
        return Tensor(shape: base.shape, dtype: dtype, littleEndianBytes: bytes)
    }

    /// The weighted average of everything folded so far, or nil if nothing was folded.
    /// - Throws: when an update kept aside under the weight cap cannot be read.
    public func average() throws -> ModelWeights? {
        var copy = self
        return try copy.takeAverage()
    }

    /// The average, taking the sums apart as it goes: each tensor's sums are released once its average is
    /// written, so (when this value holds the only reference to them) the double-precision sums and the
    /// result are never both whole in memory. Call it once; the value is spent afterwards.
    /// - Throws: when an update kept aside under the weight cap cannot be read.
    public mutating func takeAverage() throws -> ModelWeights? {
        guard count > 0 else { return nil }
        var sums = self.sums.isEmpty ? Self.zeros(for: layout, blockElements: blockElements) : self.sums
        self.sums = []
        var total = foldedWeight
        let level = weightCap?.level(for: weights) ?? .infinity
        for (weight, update, shrink) in heaviest {
            try addUpdate(update, weight: min(weight, level), shrink: shrink, into: &sums)
            total += min(weight, level)
        }
        heaviest = []
        let scale = 1 / total
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(layout.tensors.count)
        for (index, named) in layout.tensors.enumerated() {
            tensors.append(
                NamedTensor(name: named.name, tensor: Self.average(of: &sums[index], scale: scale, like: named.tensor)))
        }
        return ModelWeights(tensors)
    }

    /// DP-FedAvg's average of updates folded at unit weight (McMahan et al. 2018, with a fixed denominator):
    /// base + (Σᵢ clipped Δᵢ + N(0, sumNoise²)) / denominator for every floating-point coordinate, where the
    /// denominator is fixed before any result arrives (the round's selected clients), so neither the average
    /// nor its noise depends on how many clients answered. Integer and boolean tensors keep the base model's
    /// values: no clip bounds them, so averaging them would release them without a guarantee. Frees the sums
    /// block by block, as `takeAverage()` does.
    /// - Precondition: every fold had weight 1, no weight cap, `denominator` ≥ the updates folded.
    public mutating func takePrivateAverage(
        denominator: Int, sumNoise: Double, using generator: inout NoiseGenerator
    ) -> ModelWeights? {
        precondition(weightCap == nil && weights.allSatisfy { $0 == 1 }, "a private average folds at unit weight")
        precondition(denominator >= count && sumNoise >= 0 && sumNoise.isFinite)
        guard count > 0 else { return nil }
        var sums = self.sums
        self.sums = []
        let folded = foldedWeight
        var tensors: [NamedTensor] = []
        for (index, named) in layout.tensors.enumerated() {
            guard named.tensor.dtype.isFloatingPoint else {
                tensors.append(named)
                continue
            }
            let width = named.tensor.dtype.byteWidth
            named.tensor.withLittleEndianBytes { base in
                var offset = 0
                for block in sums[index].indices {
                    let length = sums[index][block].count
                    let piece = UnsafeRawBufferPointer(rebasing: base[(offset * width)..<((offset + length) * width)])
                    sums[index][block].withUnsafeMutableBufferPointer { sum in
                        // Σ (base + clipped Δ) − n·base = Σ clipped Δ; noise; / D; + base.
                        TensorElements.accumulate(
                            raw: piece, dtype: named.tensor.dtype, weight: -folded, into: sum.baseAddress!)
                    }
                    generator.addGaussianNoise(to: &sums[index][block], standardDeviation: sumNoise)
                    sums[index][block].withUnsafeMutableBufferPointer { sum in
                        let scale = 1 / Double(denominator)
                        for i in sum.indices { sum[i] *= scale }
                        TensorElements.accumulate(
                            raw: piece, dtype: named.tensor.dtype, weight: 1, into: sum.baseAddress!)
                    }
                    offset += length
                }
            }
            tensors.append(
                NamedTensor(name: named.name, tensor: Self.average(of: &sums[index], scale: 1, like: named.tensor)))
        }
        return ModelWeights(tensors)
    }
}
