/// glibc's allocator, tuned for a process that holds a few model-sized blocks and frees them every round.
///
/// By default glibc raises its mmap threshold (up to 32 MiB) each time a large mmapped block is freed, so
/// later tensors, sums and chunks land in the heap, and a freed heap block is rarely returned: `rondo bench
/// round` measured the coordinator's RSS at 7.0× a 100 MB model with the default and 5.4× with this tuning.
enum MallocTuning {
    // From glibc's <malloc.h>, which Swift's Glibc module does not export.
    private static let mmapThreshold: Int32 = -3
    private static let arenaMax: Int32 = -8

    /// Blocks of 1 MiB and more come from mmap and go back to the system when freed; two arenas.
    static func apply() {
        _ = mallopt(mmapThreshold, 1 << 20)
        _ = mallopt(arenaMax, 2)
    }

    @_silgen_name("mallopt")
    private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
}
