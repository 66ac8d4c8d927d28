import FrameExport

/// Builds small PNG files by hand, byte by byte, to feed the reader kinds of PNG this module
/// never writes itself: grey, grey+alpha, RGBA, palette with transparency, 16-bit.
///
/// The pixel data is wrapped in a zlib stream made of *stored* (uncompressed) deflate blocks,
/// which needs no compressor: zlib header `78 01`, then per block `BFINAL/BTYPE`, `LEN`, `~LEN`
/// (little-endian) and the raw bytes, then the Adler-32 checksum of the data (big-endian).
enum PNGFixtures {
    /// PNG colour types (the IHDR "colour type" byte).
    enum ColorType: UInt8 {
        case gray = 0, rgb = 2, palette = 3, grayAlpha = 4, rgba = 6
    }

    /// A PNG with the given raw samples (one row after the other, without filter bytes).
    static func png(width: Int, height: Int, bitDepth: UInt8, colorType: ColorType, rows: [[UInt8]],
                    palette: [UInt8]? = nil, transparency: [UInt8]? = nil) -> [UInt8] {
        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [bitDepth, colorType.rawValue, 0, 0, 0]  // compression, filter, interlace: defaults
        // Each row starts with filter type 0 ("None").
        let raw: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }
        var file = PNGChunks.signature + PNGChunks.chunk(type: "IHDR", data: header)
        if let palette { file += PNGChunks.chunk(type: "PLTE", data: palette) }
        if let transparency { file += PNGChunks.chunk(type: "tRNS", data: transparency) }
        file += PNGChunks.chunk(type: "IDAT", data: zlibStored(raw))
        file += PNGChunks.chunk(type: "IEND", data: [])
        return file
    }

    /// `data` as a zlib stream of stored deflate blocks (at most 65535 bytes each).
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(data.count, start + 65535)
            let length = UInt16(end - start)
            out.append(end == data.count ? 1 : 0)  // BFINAL on the last block, BTYPE 00 = stored
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out += data[start..<end]
            start = end
        } while start < data.count
        // Adler-32: two running sums modulo 65521.
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + bigEndian(b << 16 | a)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
