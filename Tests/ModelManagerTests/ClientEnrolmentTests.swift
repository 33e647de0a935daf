import FederationCore
import Testing

@testable import ModelManager

/// What each client write reports it changed: the coordinator keeps its count of enrolled clients from these
/// figures instead of holding every client in memory, so each must match the table.
@Suite struct ClientEnrolmentTests {
    @Test(arguments: StoreBackend.allCases) func eachWriteReportsWhetherItChangedWhoIsEnrolled(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, _ async throws in
            #expect(
                try await store.clientsEnrolled([
                    .registered(id: "a", name: "a", tokenSHA256: "ta", identitySHA256: "ia"),
                    .registered(id: "b", name: "b", tokenSHA256: "tb", identitySHA256: nil),
                    .registered(id: "c", name: "c", tokenSHA256: "tc", identitySHA256: nil),
                ]) == 3)
            #expect(try await store.enrolledClientCount() == 3)
            #expect(
                try await store.clientsEnrolled([.returned(id: "a", name: "a", tokenSHA256: "ta2")]) == 0,
                "still enrolled: registering again changes the token, not the count")
            #expect(try await store.clientLeft(id: "a", tokenSHA256: "ta") == false, "a replaced token's departure")
            #expect(try await store.clientLeft(id: "a", tokenSHA256: "ta2"))
            #expect(try await store.clientLeft(id: "a") == false, "leaving twice")
            #expect(try await store.enrolledClientCount() == 2)
            #expect(try await store.clientsEnrolled([.returned(id: "a", name: "a", tokenSHA256: "ta3")]) == 1)

            #expect(try await store.revokeClient(id: "b", reason: "r", actor: "t") == .revoked(wasEnrolled: true))
            #expect(try await store.revokeClient(id: "b", reason: "r", actor: "t") == .alreadyRevoked)
            #expect(try await store.clientLeft(id: "c"))
            #expect(try await store.revokeClient(id: "c", reason: "r", actor: "t") == .revoked(wasEnrolled: false))
            #expect(try await store.revokeClient(id: "nobody", reason: "r", actor: "t") == .unknownClient)
            #expect(
                try await store.clientsEnrolled([.returned(id: "b", name: "b", tokenSHA256: "tb2")]) == 0,
                "a revoked client stays revoked")
            #expect(try await store.enrolledClientCount() == 1)
            #expect(try await store.client(tokenSHA256: "ta3")?.clientID == "a")
            #expect(try await store.client(tokenSHA256: "ta") == nil, "a replaced token is nobody's")
            #expect(try await store.client(tokenSHA256: "tb")?.revokedAt != nil)
        }
    }

    @Test(arguments: StoreBackend.allCases) func theTokenFilterHoldsEveryStoredTokenHash(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, _ async throws in
            let hashes = (0..<200).map { Self.digest(index: $0) }
            try await store.clientsEnrolled(
                hashes.enumerated().map {
                    .registered(id: "c\($0.offset)", name: "n", tokenSHA256: $0.element, identitySHA256: nil)
                })
            _ = try await store.clientLeft(id: "c0")
            _ = try await store.revokeClient(id: "c1", reason: "r", actor: "t")
            let filter = try await store.tokenFilter()
            #expect(hashes.allSatisfy { filter.mayContain(tokenSHA256: $0) }, "live, departed and revoked alike")
            #expect(!filter.mayContain(tokenSHA256: Self.digest(index: 10_000)))
        }
    }

    /// A SHA-256-shaped hex string per index.
    static func digest(index: Int) -> String {
        var generator = SeededRandomNumberGenerator(seed: UInt64(index))
        return (0..<4).map { _ in
            let word = String(UInt64.random(in: .min ... .max, using: &generator), radix: 16)
            return String(repeating: "0", count: 16 - word.count) + word
        }.joined()
    }
}
