import Testing

@testable import Coordinator

@Suite struct ModelCacheTests {
    @Test func keepsTheLastFewVersionsOnceEach() {
        var cache = ModelCache(capacity: 2)
        cache.insert(version: 1, bytes: [1], sha256: "one")
        cache.insert(version: 2, bytes: [2], sha256: "two")
        cache.insert(version: 1, bytes: [1], sha256: "one")
        #expect(cache.versions == [2, 1], "re-inserting moves a version to the back, never twice")
        cache.insert(version: 3, bytes: [3], sha256: "three")
        #expect(cache.versions == [1, 3])
        #expect(cache.model(version: 2) == nil)
        #expect(cache.model(version: 3)?.sha256 == "three")
    }
}
