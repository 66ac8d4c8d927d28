import Foundation
import _CLibGD
import _CLibPNG

extension RGBImage {
    /// Reads a PNG or JPEG file into an 8-bit RGB image.
    ///
    /// The format is recognised from the first bytes, not from the extension. PNGs of any kind
    /// (1-16 bits, grey, palette, with or without alpha) come out as 8-bit RGB; transparent pixels
    /// are composited over white. Every failure throws a `FrameExportError` whose message names
    /// the file: missing, unreadable, empty, another format (GIF, BMP, text...), zero size, or a
    /// damaged or truncated PNG/JPEG.
    ///
    /// ```swift
    /// let photo = try RGBImage(contentsOfFile: "inputs/cat.jpg")
    /// ```
    public init(contentsOfFile path: String) throws {
        let data = try readFile(path)
        try self.init(decoding: data, name: path)
    }

    /// Decodes PNG or JPEG bytes already in memory. `name` is only used in error messages.
    public init(decoding data: Data, name: String = "image data") throws {
        guard !data.isEmpty else { throw FrameExportError.emptyFile(path: name) }
        switch ImageFormat.detect(data) {
        case .png: self = try Self.decodePNG(data, name: name)
        case .jpeg: self = try Self.decodeJPEG(data, name: name)
        case let other: throw FrameExportError.unsupportedFormat(path: name, detected: other.phrase)
        }
    }

    // MARK: - PNG through libpng's "simplified" API

    /// libpng's classic API reports errors by `longjmp`ing out of the failing call, which must
    /// never jump across Swift frames (Swift would skip its cleanup and corrupt memory). The
    /// simplified `png_image` API catches those jumps inside libpng and returns 0 instead, with
    /// the reason in `png_image.message`, so it is safe to call from Swift.
    private static func decodePNG(_ data: Data, name: String) throws -> RGBImage {
        // libpng would call a zero width "invalid IHDR"; say plainly what is wrong instead.
        // IHDR is always first: width at bytes 16-19, height at 20-23 (big-endian).
        let header = [UInt8](data.prefix(24))
        if header.count == 24 && (header[16..<20].allSatisfy { $0 == 0 } || header[20..<24].allSatisfy { $0 == 0 }) {
            throw FrameExportError.zeroSizeImage(path: name)
        }

        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&png) }  // safe to call twice; a no-op once libpng has freed it

        func failure() -> FrameExportError {
            .corruptImage(path: name, format: "PNG", reason: pngMessage(png))
        }

        // libpng reads straight from our buffer, so both calls must run while it is pinned.
        let rgba: [UInt8] = try data.withUnsafeBytes { raw in
            guard png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count) != 0 else {
                throw failure()
            }
            let width = Int(png.width), height = Int(png.height)
            guard width > 0 && height > 0 else { throw FrameExportError.zeroSizeImage(path: name) }
            guard width * height <= maxPixelCount else {
                throw FrameExportError.imageTooLarge(path: name, width: width, height: height)
            }
            // Ask for 8-bit sRGB RGBA whatever the file holds; libpng expands palettes, grey,
            // 16-bit samples and tRNS transparency for us. (C's PNG_FORMAT_RGBA is this OR of two
            // flags; Swift does not import macros built from other macros.)
            png.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
            // Without a gAMA or sRGB chunk, libpng assumes 16-bit samples are *linear* light and
            // would brighten them on the way to 8-bit sRGB (0x8080 would become 186, not 128).
            // Untagged files are sRGB by convention (browsers, Pillow, OpenCV), so say so.
            png.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            var buffer = [UInt8](repeating: 0, count: width * height * 4)
            let finished = buffer.withUnsafeMutableBytes { out in
                png_image_finish_read(&png, nil, out.baseAddress, 0, nil)
            }
            guard finished != 0 else { throw failure() }
            return buffer
        }
        return flattenOverWhite(rgba, width: Int(png.width), height: Int(png.height))
    }

    /// The text libpng left in the fixed-size `message` field (a C char array, a tuple in Swift).
    private static func pngMessage(_ png: png_image) -> String {
        withUnsafeBytes(of: png.message) { raw in
            let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            return text.isEmpty ? "libpng reported an unknown error" : text
        }
    }

    /// Composites RGBA over a white background: `out = (c * a + 255 * (255 - a)) / 255`, rounded.
    ///
    /// This is plain "over" compositing on the stored sRGB values, which is what browsers and
    /// image viewers show for a transparent PNG on a white page.
    private static func flattenOverWhite(_ rgba: [UInt8], width: Int, height: Int) -> RGBImage {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let alpha = Int(rgba[i * 4 + 3])
            for channel in 0..<3 {
                let color = Int(rgba[i * 4 + channel])
                rgb[i * 3 + channel] = UInt8((color * alpha + 255 * (255 - alpha) + 127) / 255)
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    // MARK: - JPEG through libgd (which uses libjpeg)

    private static func decodeJPEG(_ data: Data, name: String) throws -> RGBImage {
        var bytes = [UInt8](data)
        switch JPEGStructure.inspect(bytes) {
        case .broken(let reason):
            throw FrameExportError.corruptImage(path: name, format: "JPEG", reason: reason)
        case .complete(let width, let height):
            guard width > 0 && height > 0 else { throw FrameExportError.zeroSizeImage(path: name) }
            guard width * height <= maxPixelCount else {
                throw FrameExportError.imageTooLarge(path: name, width: width, height: height)
            }
        }
        // gd reports libjpeg's fatal errors by returning NULL (it catches libjpeg's longjmp itself).
        // Warnings (damaged but decodable data, which libjpeg patches over) are not printed: the
        // marker walk above has already caught the common damage, a file cut short.
        let (decoded, message) = GDMessages.capturing {
            bytes.withUnsafeMutableBytes { raw in
                GDImage(gdImageCreateFromJpegPtrEx(Int32(raw.count), raw.baseAddress, 1))
            }
        }
        guard let decoded else {
            throw FrameExportError.corruptImage(path: name, format: "JPEG",
                                                reason: message ?? "libjpeg could not decode it")
        }
        return decoded.rgbImage()
    }
}

/// Reads a whole file, turning each kind of failure into a `FrameExportError` that names the path.
func readFile(_ path: String) throws -> Data {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw FrameExportError.fileNotFound(path: path)
    }
    guard !isDirectory.boolValue else {
        throw FrameExportError.unreadableFile(path: path, reason: "it is a directory")
    }
    guard FileManager.default.isReadableFile(atPath: path) else {
        throw FrameExportError.unreadableFile(path: path, reason: "permission denied")
    }
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw FrameExportError.unreadableFile(path: path, reason: error.localizedDescription)
    }
}
