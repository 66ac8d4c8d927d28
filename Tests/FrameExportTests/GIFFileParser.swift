import FrameExport

/// An independent reader for the block structure of a GIF file, so tests can check what the
/// writer produced without trusting the library that wrote it.
///
/// A GIF89a file is: the header "GIF89a", the logical screen descriptor (size, flags, optional
/// global colour table), then blocks until the trailer byte 0x3B:
/// - 0x21 0xF9: graphic control extension, holding the next frame's delay (centiseconds, LE);
/// - 0x21 0xFF: application extension; "NETSCAPE2.0" with sub-block [1, count LE] sets looping;
/// - 0x2C: image descriptor (position, size, flags, optional local colour table), then the LZW
///   minimum code size and the compressed pixels in sub-blocks (length byte, data; 0 ends).
struct GIFFileParser {
    struct Frame {
        var width: Int
        var height: Int
        var localColorTable: [RGBColor]
        /// Palette indices, row by row (decoded from LZW).
        var indices: [Int]

        /// The frame's pixels looked up in its local colour table.
        var image: RGBImage {
            var image = RGBImage(width: width, height: height)
            for (i, index) in indices.enumerated() { image[i % width, i / width] = localColorTable[index] }
            return image
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    var width = 0
    var height = 0
    var hasGlobalColorTable = false
    /// `nil` when there is no NETSCAPE2.0 extension (play once).
    var loopCount: Int?
    var delays: [Int] = []
    var frames: [Frame] = []

    init(_ bytes: [UInt8]) throws {
        var i = 0
        func byte() throws -> Int {
            guard i < bytes.count else { throw ParseError(description: "unexpected end of file at \(i)") }
            defer { i += 1 }
            return Int(bytes[i])
        }
        func word() throws -> Int { try byte() | (try byte() << 8) }
        func take(_ n: Int) throws -> [UInt8] {
            guard i + n <= bytes.count else { throw ParseError(description: "unexpected end of file at \(i)") }
            defer { i += n }
            return Array(bytes[i..<(i + n)])
        }
        func colorTable(flags: Int) throws -> [RGBColor] {
            let entries = 1 << ((flags & 7) + 1)
            let raw = try take(3 * entries)
            return (0..<entries).map { RGBColor(raw[3 * $0], raw[3 * $0 + 1], raw[3 * $0 + 2]) }
        }
        func subBlocks() throws -> [UInt8] {
            var data: [UInt8] = []
            while true {
                let length = try byte()
                if length == 0 { return data }
                data += try take(length)
            }
        }

        guard try take(6) == Array("GIF89a".utf8) else { throw ParseError(description: "not a GIF89a header") }
        width = try word()
        height = try word()
        let screenFlags = try byte()
        _ = try take(2)  // background colour index, pixel aspect ratio
        hasGlobalColorTable = screenFlags & 0x80 != 0
        if hasGlobalColorTable { _ = try colorTable(flags: screenFlags) }

        while true {
            switch try byte() {
            case 0x21:
                let label = try byte()
                let body = try subBlocks()
                if label == 0xF9 {
                    guard body.count == 4 else { throw ParseError(description: "bad graphic control extension") }
                    delays.append(Int(body[1]) | Int(body[2]) << 8)
                } else if label == 0xFF, body.count >= 14, Array(body[0..<11]) == Array("NETSCAPE2.0".utf8), body[11] == 1 {
                    loopCount = Int(body[12]) | Int(body[13]) << 8
                }
            case 0x2C:
                _ = try word(); _ = try word()  // left, top
                let frameWidth = try word(), frameHeight = try word()
                let flags = try byte()
                let table = flags & 0x80 != 0 ? try colorTable(flags: flags) : []
                let minimumCodeSize = try byte()
                let indices = try Self.decodeLZW(try subBlocks(), minimumCodeSize: minimumCodeSize,
                                                 pixelCount: frameWidth * frameHeight)
                frames.append(Frame(width: frameWidth, height: frameHeight, localColorTable: table, indices: indices))
            case 0x3B:
                return
            case let other:
                throw ParseError(description: "unknown block 0x\(String(other, radix: 16)) at \(i - 1)")
            }
        }
    }

    /// GIF's variable-width LZW: codes are read least-significant bit first, starting at
    /// `minimumCodeSize + 1` bits and growing by one bit whenever the dictionary fills the width.
    static func decodeLZW(_ data: [UInt8], minimumCodeSize: Int, pixelCount: Int) throws -> [Int] {
        let clear = 1 << minimumCodeSize, end = clear + 1
        var dictionary: [[Int]] = []
        var codeSize = minimumCodeSize + 1
        func reset() {
            dictionary = (0..<clear).map { [$0] } + [[], []]
            codeSize = minimumCodeSize + 1
        }
        reset()
        var output: [Int] = []
        var previous: [Int]?
        var bitPosition = 0
        while bitPosition + codeSize <= data.count * 8 {
            var code = 0
            for bit in 0..<codeSize where data[(bitPosition + bit) / 8] & (1 << ((bitPosition + bit) % 8)) != 0 {
                code |= 1 << bit
            }
            bitPosition += codeSize
            if code == clear { reset(); previous = nil; continue }
            if code == end { break }
            let entry: [Int]
            if code < dictionary.count {
                entry = dictionary[code]
            } else if code == dictionary.count, let previous {
                entry = previous + [previous[0]]
            } else {
                throw ParseError(description: "invalid LZW code \(code)")
            }
            output += entry
            if let previous, dictionary.count < 4096 {
                dictionary.append(previous + [entry[0]])
                if dictionary.count == 1 << codeSize && codeSize < 12 { codeSize += 1 }
            }
            previous = entry
        }
        guard output.count >= pixelCount else {
            throw ParseError(description: "LZW data has \(output.count) pixels, expected \(pixelCount)")
        }
        return Array(output.prefix(pixelCount))
    }
}
