import FederationCore

/// The demo's data layout: a held-out slice (20 %, for the final centralised check and split evenly across
/// clients for federated evaluation) and a Dirichlet(α) non-IID split of the rest for training.
///
/// Everything derives from the seed, so separate `rondo client` processes given the same seed, α and client
/// count agree on who holds what.
public struct DemoData: Sendable {
    public struct ClientShare: Sendable {
        public var train: DigitsDataset
        public var test: DigitsDataset
    }

    public var clients: [ClientShare]
    public var heldOut: DigitsDataset

    public init(dataset: DigitsDataset, clients: Int, alpha: Double, seed: UInt64, heldOutFraction: Double = 0.2) {
        var generator = SeededRandomNumberGenerator(seed: seed)
        var order = Array(0..<dataset.count)
        order.shuffle(using: &generator)
        let heldOutCount = Int(Double(dataset.count) * heldOutFraction)
        let heldOutIndices = Array(order[0..<heldOutCount])
        let trainIndices = Array(order[heldOutCount...])
        let trainLabels = trainIndices.map { dataset.labels[$0] }
        let parts = DirichletPartitioner(alpha: alpha).partition(
            labels: trainLabels, clients: clients, using: &generator)
        self.heldOut = dataset.subset(heldOutIndices)
        self.clients = (0..<clients).map { client in
            let testSlice = stride(from: client, to: heldOutIndices.count, by: clients).map { heldOutIndices[$0] }
            return ClientShare(
                train: dataset.subset(parts[client].map { trainIndices[$0] }), test: dataset.subset(testSlice))
        }
    }
}
