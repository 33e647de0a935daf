import FederationCore
import Testing

/// A bounded fuzz of the safetensors decoder with seeded random and mutated inputs: every input either decodes
/// to a file that re-encodes and decodes to itself, or is refused with a `SafeTensorsError` — never a crash or
/// a hang (the run is bounded, so a hang shows as a test that never ends).
@Suite struct SafeTensorsFuzzTests {
    static let valid = SafeTensorsFile(weights: SafeTensorsTests.weights, metadata: ["num_examples": "12"]).encoded()
    static let limits = SafeTensorsLimits(maxHeaderBytes: 1 << 16, maxTensorCount: 64)

    enum Verdict { case decoded, refused }

    static func check(_ bytes: [UInt8]) -> Verdict {
        do {
            let file = try SafeTensorsFile.decode(bytes, limits: limits)
            let again = try? SafeTensorsFile.decode(file.encoded(), limits: limits)
            #expect(again == file, "a decoded file re-encodes to itself")
            return .decoded
        } catch {
            #expect(!error.message.isEmpty, "a refusal explains itself")
            return .refused
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func mutatedFilesDecodeOrAreRefused(seed: UInt64) {
        var generator = SeededRandomNumberGenerator(seed: seed)
        var verdicts: [Verdict] = []
        for _ in 0..<2_500 {
            var bytes = Self.valid
            for _ in 0...Int.random(in: 0...4, using: &generator) {
                switch Int.random(in: 0..<6, using: &generator) {
                case 0:  // flip a bit
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
                case 1:  // truncate
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
                case 2:  // overwrite a header byte with a JSON-significant character
                    guard bytes.count > 9, bytes[0] > 0 else { break }
                    let index = Int.random(in: 8..<min(bytes.count, 8 + Int(bytes[0])), using: &generator)
                    bytes[index] = Array("{}[]\",:0-9e.\\ ".utf8).randomElement(using: &generator)!
                case 3:  // a random header length
                    let length =
                        UInt64.random(in: 0...UInt64.max, using: &generator)
                        >> UInt64.random(
                            in: 0..<64, using: &generator)
                    for index in 0..<min(8, bytes.count) {
                        bytes[index] = UInt8(truncatingIfNeeded: length >> (8 * index))
                    }
                case 4:  // append junk
                    bytes += (0..<Int.random(in: 1...32, using: &generator)).map { _ in
                        UInt8.random(in: 0...255, using: &generator)
                    }
                default:  // duplicate a slice
                    guard bytes.count > 2 else { break }
                    let start = Int.random(in: 0..<bytes.count - 1, using: &generator)
                    let end = Int.random(in: start..<bytes.count, using: &generator)
                    bytes.insert(contentsOf: bytes[start...end], at: Int.random(in: 0...bytes.count, using: &generator))
                }
                if bytes.isEmpty { break }
            }
            verdicts.append(Self.check(bytes))
        }
        #expect(verdicts.contains(.refused), "the mutations reach the refusals")
    }

    @Test func randomBuffersAreRefused() {
        var generator = SeededRandomNumberGenerator(seed: 99)
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...256, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count >= 8, Bool.random(using: &generator) {  // a plausible length, random header text
                let length = UInt64(count - 8)
                for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: length >> (8 * UInt64(index))) }
            }
            #expect(Self.check(bytes) == .refused)
        }
    }
}
