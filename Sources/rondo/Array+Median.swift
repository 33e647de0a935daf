extension Array where Element == Double {
    /// The median (the mean of the two middle values for an even count); NaN when empty.
    var median: Double {
        let sorted = sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
