import FederationCore
import ModelManager

/// Token helpers: random bearer tokens, and the hashes that are all the coordinator keeps of them.
enum Digest {
    /// Lower-case hex SHA-256 of a token (the same digest the checkpoint store uses for models).
    static func sha256Hex(_ token: String.UTF8View) -> String {
        CheckpointStore.sha256Hex(Array(token))
    }

    /// A random token of `bytes` bytes, hex encoded (256 bits by default).
    static func randomToken(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
    }
}
