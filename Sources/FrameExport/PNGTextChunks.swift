import Foundation

/// One key/value text note stored inside a PNG, such as the generation settings.
///
/// Tools like AUTOMATIC1111's web UI store their settings under the key `parameters`, so an
/// image written with that key shows its prompt and seed in their "PNG info" tab.
///
/// ```swift
/// let note = PNGTextEntry(key: "parameters", value: "prompt: a red fox, seed: 42, steps: 25")
/// ```
public struct PNGTextEntry: Equatable, Sendable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// Reads the text notes (`tEXt` and uncompressed `iTXt` chunks) of a PNG file, in file order.
///
/// Compressed notes (`zTXt`, compressed `iTXt`) are skipped: reading them would need zlib, and
/// this module never writes them. Throws if the file is missing, not a PNG, or a chunk is damaged.
///
/// ```swift
/// for entry in try readPNGText("output/fox.png") { print(entry.key, "=", entry.value) }
/// ```
public func readPNGText(_ path: String) throws -> [PNGTextEntry] {
    try PNGChunks.textEntries(in: [UInt8](readFile(path)), name: path)
}

/// The chunk structure of a PNG file, just enough of it to add and read text notes.
///
/// A PNG is an 8-byte signature followed by chunks. Each chunk is:
///
///     length (4 bytes, big-endian, counts only the data)
///     type   (4 ASCII letters: IHDR, IDAT, tEXt, IEND...)
///     data   (length bytes)
///     CRC-32 of type + data (4 bytes, big-endian)
///
/// The first chunk is always the 13-byte `IHDR` header and the last is `IEND`.
package enum PNGChunks {
    package static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Serialises one chunk, computing its CRC.
    package static func chunk(type: String, data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        precondition(typeBytes.count == 4, "a PNG chunk type has 4 letters")
        return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(CRC32.checksum(typeBytes + data))
    }

    /// The chunk for one note: `tEXt` when the value is plain ASCII (readable by every tool),
    /// `iTXt` when it needs UTF-8 (prompts in other languages, emoji).
    ///
    ///     tEXt data: keyword 0 text                        (Latin-1)
    ///     iTXt data: keyword 0 0 0 language 0 translated-keyword 0 text   (text in UTF-8;
    ///                the two zeros after the keyword mean "not compressed")
    package static func textChunk(for entry: PNGTextEntry) throws -> [UInt8] {
        try validateKeyword(entry.key)
        guard !entry.value.contains("\0") else {
            throw FrameExportError.invalidArgument("PNG text for '\(entry.key)' must not contain a NUL character")
        }
        let keyword = Array(entry.key.utf8)
        if entry.value.unicodeScalars.allSatisfy({ $0.isASCII }) {
            return chunk(type: "tEXt", data: keyword + [0] + Array(entry.value.utf8))
        }
        return chunk(type: "iTXt", data: keyword + [0, 0, 0, 0, 0] + Array(entry.value.utf8))
    }

    /// The PNG rules for keywords, kept to printable ASCII: 1-79 characters, no leading, trailing
    /// or doubled spaces.
    private static func validateKeyword(_ key: String) throws {
        let valid = (1...79).contains(key.unicodeScalars.count)
            && key.unicodeScalars.allSatisfy { (32...126).contains($0.value) }
            && !key.hasPrefix(" ") && !key.hasSuffix(" ") && !key.contains("  ")
        guard valid else {
            throw FrameExportError.invalidArgument(
                "'\(key)' is not a valid PNG text key: use 1-79 printable ASCII characters without leading, trailing or double spaces")
        }
    }

    /// Inserts already-serialised chunks right after `IHDR`, so readers that stop early still
    /// see the notes before the (large) image data.
    package static func insertAfterHeader(_ chunks: [UInt8], into png: [UInt8]) -> [UInt8] {
        let headerEnd = signature.count + 4 + 4 + 13 + 4  // signature, then IHDR: length, type, data, CRC
        precondition(png.count > headerEnd && Array(png[12..<16]) == Array("IHDR".utf8),
                     "libpng output does not start with IHDR")
        return Array(png[..<headerEnd]) + chunks + Array(png[headerEnd...])
    }

    /// Splits a PNG file into `(type, data)` pairs, checking lengths and CRCs, up to `IEND`.
    package static func chunks(in bytes: [UInt8], name: String) throws -> [(type: String, data: ArraySlice<UInt8>)] {
        func corrupt(_ reason: String) -> FrameExportError {
            .corruptImage(path: name, format: "PNG", reason: reason)
        }
        guard bytes.starts(with: signature) else {
            if bytes.isEmpty { throw FrameExportError.emptyFile(path: name) }
            throw FrameExportError.unsupportedFormat(path: name, detected: ImageFormat.detect(Data(bytes)).phrase)
        }
        var result: [(type: String, data: ArraySlice<UInt8>)] = []
        var i = signature.count
        while true {
            guard i + 8 <= bytes.count else { throw corrupt("the file ends before the IEND chunk") }
            let length = Int(readBigEndian(bytes, at: i))
            let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            guard length <= bytes.count - i - 12 else { throw corrupt("the \(type) chunk runs past the end of the file") }
            let dataRange = (i + 8)..<(i + 8 + length)
            let storedCRC = readBigEndian(bytes, at: dataRange.upperBound)
            guard CRC32.checksum(bytes[(i + 4)..<dataRange.upperBound]) == storedCRC else {
                throw corrupt("the \(type) chunk fails its CRC check")
            }
            result.append((type, bytes[dataRange]))
            if type == "IEND" { return result }
            i = dataRange.upperBound + 4
        }
    }

    /// Decodes all readable text notes of a PNG file.
    package static func textEntries(in bytes: [UInt8], name: String) throws -> [PNGTextEntry] {
        try chunks(in: bytes, name: name).compactMap { chunk -> PNGTextEntry? in
            let fields = chunk.data.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
            guard fields.count == 2 else { return nil }
            let key = latin1(fields[0])
            switch chunk.type {
            case "tEXt":
                return PNGTextEntry(key: key, value: latin1(fields[1]))
            case "iTXt":
                // compression flag, compression method, language 0, translated keyword 0, text
                let rest = fields[1]
                guard rest.count >= 2, rest[rest.startIndex] == 0 else { return nil }  // compressed: skip
                let parts = rest.dropFirst(2).split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3 else { return nil }
                return PNGTextEntry(key: key, value: String(decoding: parts[2], as: UTF8.self))
            default:
                return nil
            }
        }
    }

    /// Latin-1 maps each byte to the Unicode character with the same number.
    private static func latin1(_ bytes: ArraySlice<UInt8>) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func readBigEndian(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }
}
