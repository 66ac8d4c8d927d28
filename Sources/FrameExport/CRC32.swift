/// The CRC-32 checksum that protects every PNG chunk (the same one zip and gzip use).
///
/// A CRC treats the bytes as one long binary polynomial and returns the remainder of its division
/// by a fixed polynomial (0xEDB88320 in this bit-reversed form), so almost any corruption changes
/// the result. The table holds the remainder for every possible byte, which lets us process a
/// byte per step instead of a bit per step. This follows the sample code of the PNG specification.
///
/// ```swift
/// CRC32.checksum(Array("123456789".utf8))   // 0xCBF43926, the standard check value
/// ```
package enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 {
            c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1
        }
        return c
    }

    /// The CRC of `bytes`. Start and end are inverted (all ones), as PNG and zlib define it.
    package static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }
}
