extension Sequence<UInt8> {
    /// Lower-case hexadecimal, two digits per byte (SHA-256 digests, tokens, trace and span ids).
    public var hexString: String {
        var out = ""
        for byte in self {
            out.append(Character(Unicode.Scalar(Self.hexDigits[Int(byte >> 4)])))
            out.append(Character(Unicode.Scalar(Self.hexDigits[Int(byte & 0x0F)])))
        }
        return out
    }

    private static var hexDigits: [UInt8] { Array("0123456789abcdef".utf8) }
}
