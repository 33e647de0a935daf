import CZlib

/// gzip decompression through zlib, for the bundled data set.
enum Gzip {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func decompress(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard czlib_inflate_init_auto(&stream) == Z_OK else { throw Failure(description: "inflateInit2 failed") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = input
        return try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
                if status == Z_STREAM_END { return output }
                guard status == Z_OK else { throw Failure(description: "corrupt gzip data (zlib status \(status))") }
            }
        }
    }
}
