/// The model versions held in memory for downloads: exactly the ones the round engine holds (the current
/// model and the open round's base and candidate), each as one `ServedModel` that shares its tensors with the
/// engine and that every download of it shares. No version is held twice, and none the engine let go of.
///
/// Other versions (a client finishing a download of the model a rollback replaced) are read from the store
/// for the one request and not kept.
struct ModelCache: Sendable {
    private var entries: [Int: ServedModel] = [:]

    func model(version: Int) -> ServedModel? { entries[version] }

    mutating func insert(_ model: ServedModel) {
        entries[model.version] = model
    }

    /// Lets go of every version not in `live`.
    mutating func keep(only live: Set<Int>) {
        entries = entries.filter { live.contains($0.key) }
    }

    var versions: [Int] { entries.keys.sorted() }
}
