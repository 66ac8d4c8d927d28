import Foundation

/// What a file's first bytes say it is.
///
/// Image files begin with a fixed "magic" signature, so the format can be told from the content,
/// whatever the file name says: a JPEG renamed to `.png` is still read correctly, and a GIF
/// is refused with a clear message instead of a confusing decoder error.
///
/// ```swift
/// ImageFormat.detect(Data([0xFF, 0xD8, 0xFF, 0xE0]))   // .jpeg
/// ```
public enum ImageFormat: Equatable, Sendable {
    case png, jpeg, gif, bmp, webp, tiff
    /// Printable characters only: probably a text file given by mistake.
    case text
    case unknown

    /// Identifies `data` by its signature.
    public static func detect(_ data: Data) -> ImageFormat {
        let bytes = [UInt8](data.prefix(512))
        func starts(with signature: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + signature.count
                && Array(bytes[offset..<(offset + signature.count)]) == signature
        }
        if starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }  // \x89PNG\r\n\x1a\n
        if starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }                             // SOI + next marker
        if starts(with: Array("GIF87a".utf8)) || starts(with: Array("GIF89a".utf8)) { return .gif }
        if starts(with: Array("BM".utf8)) { return .bmp }
        if starts(with: Array("RIFF".utf8)) && starts(with: Array("WEBP".utf8), at: 8) { return .webp }
        if starts(with: [0x49, 0x49, 0x2A, 0x00]) || starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if !bytes.isEmpty && bytes.allSatisfy(isTextByte) { return .text }
        return .unknown
    }

    /// Tab, newline, carriage return, printable ASCII, and any byte of a UTF-8 multi-byte sequence.
    private static func isTextByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || byte == 0x0A || byte == 0x0D || (0x20...0x7E).contains(byte) || byte >= 0x80
    }

    /// How error messages name the format: "a GIF image", "a text file", ...
    var phrase: String {
        switch self {
        case .png: return "a PNG image"
        case .jpeg: return "a JPEG image"
        case .gif: return "a GIF image"
        case .bmp: return "a BMP image"
        case .webp: return "a WebP image"
        case .tiff: return "a TIFF image"
        case .text: return "a text file, not an image"
        case .unknown: return "not a recognised image format"
        }
    }
}
