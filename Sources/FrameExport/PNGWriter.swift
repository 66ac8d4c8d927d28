import Foundation
import _CLibPNG

extension RGBImage {
    /// Encodes the image as an 8-bit RGB PNG, with optional text notes.
    ///
    /// libpng's simplified API compresses the pixels into memory (it handles libpng's internal
    /// `longjmp` error reporting itself and just returns 0 on failure). The notes are then added
    /// as extra chunks by `PNGChunks`: no classic libpng API, no `setjmp` anywhere near Swift.
    public func pngData(text: [PNGTextEntry] = []) throws -> Data {
        guard width > 0 && height > 0 else {
            throw FrameExportError.encodingFailed(format: "PNG", reason: "the image is \(width)x\(height)")
        }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(width)
        png.height = UInt32(height)
        png.format = UInt32(PNG_FORMAT_RGB)
        defer { png_image_free(&png) }

        // Two passes: with no output buffer libpng only reports the size it needs.
        var size = 0
        var encoded = [UInt8]()
        let succeeded = pixels.withUnsafeBytes { source -> Bool in
            guard png_image_write_to_memory(&png, nil, &size, 0, source.baseAddress, 0, nil) != 0 else {
                return false
            }
            encoded = [UInt8](repeating: 0, count: size)
            return encoded.withUnsafeMutableBytes { out in
                png_image_write_to_memory(&png, out.baseAddress, &size, 0, source.baseAddress, 0, nil) != 0
            }
        }
        guard succeeded else {
            let reason = withUnsafeBytes(of: png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw FrameExportError.encodingFailed(format: "PNG", reason: reason)
        }
        encoded.removeSubrange(size...)  // the second pass may compress to fewer bytes

        let notes = try text.flatMap { try PNGChunks.textChunk(for: $0) }
        return Data(notes.isEmpty ? encoded : PNGChunks.insertAfterHeader(notes, into: encoded))
    }

    /// Writes the image to a PNG file atomically (see `AtomicFile`), with optional text notes.
    ///
    /// ```swift
    /// try image.writePNG(to: "output/fox.png",
    ///                    text: [PNGTextEntry(key: "parameters", value: "prompt: a red fox, seed: 42")])
    /// ```
    public func writePNG(to path: String, text: [PNGTextEntry] = []) throws {
        try AtomicFile.write(pngData(text: text), to: path)
    }

    /// Writes a PNG with notes given as a literal: `text: ["parameters": "seed: 42", "Software": "sd"]`.
    /// The notes keep the order in which they are written.
    public func writePNG(to path: String, text: KeyValuePairs<String, String>) throws {
        try writePNG(to: path, text: text.map { PNGTextEntry(key: $0.key, value: $0.value) })
    }
}
