import Foundation
import _CLibGD

/// Owns one libgd image and destroys it when the last reference goes away.
///
/// gd images live in C memory that Swift does not manage. Wrapping the pointer in a class whose
/// `deinit` calls `gdImageDestroy` means every code path, including early `throw`s, frees it
/// exactly once. Buffers that gd *returns* (encoded JPEG or GIF bytes) are copied into `Data`
/// and released with `gdFree` right away, in `takeBuffer`.
final class GDImage {
    let pointer: gdImagePtr

    /// Takes ownership of a pointer returned by a gd constructor; `nil` if gd returned NULL.
    init?(_ pointer: gdImagePtr?) {
        guard let pointer else { return nil }
        self.pointer = pointer
    }

    deinit { gdImageDestroy(pointer) }

    /// A true-colour gd image holding the same pixels as `image`.
    convenience init(copying image: RGBImage) throws {
        guard image.width > 0, image.height > 0,
              let created = gdImageCreateTrueColor(Int32(image.width), Int32(image.height)) else {
            throw FrameExportError.encodingFailed(
                format: "image", reason: "gd cannot create a \(image.width)x\(image.height) image")
        }
        self.init(created)!
        // gd stores true colour as 0xAARRGGBB in `tpixels[y][x]`, with alpha 0 meaning opaque.
        for y in 0..<image.height {
            let row = pointer.pointee.tpixels[y]!
            for x in 0..<image.width {
                let i = (y * image.width + x) * 3
                row[x] = Int32(image.pixels[i]) << 16 | Int32(image.pixels[i + 1]) << 8 | Int32(image.pixels[i + 2])
            }
        }
    }

    var width: Int { Int(pointer.pointee.sx) }
    var height: Int { Int(pointer.pointee.sy) }

    /// The pixels as an `RGBImage`. Works for palette and true-colour images alike, because
    /// `gdImageGetTrueColorPixel` looks palette entries up for us.
    func rgbImage() -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let color = gdImageGetTrueColorPixel(pointer, Int32(x), Int32(y))
                let i = (y * width + x) * 3
                pixels[i] = UInt8((color >> 16) & 0xff)
                pixels[i + 1] = UInt8((color >> 8) & 0xff)
                pixels[i + 2] = UInt8(color & 0xff)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Copies `size` bytes that gd allocated into `Data` and frees gd's buffer.
    static func takeBuffer(_ buffer: UnsafeMutableRawPointer?, size: Int32, format: String) throws -> Data {
        guard let buffer else {
            throw FrameExportError.encodingFailed(format: format, reason: "libgd returned no data")
        }
        defer { gdFree(buffer) }
        return Data(bytes: buffer, count: Int(size))
    }
}

/// Collects libgd's error messages so they end up in our Swift errors instead of on stderr.
///
/// gd reports problems through one process-wide callback (`gdSetErrorMethod`), whose default
/// prints "GD Warning: ..." to standard error. We install a callback that formats the message
/// and keeps it for the thread that caused it: gd calls the callback synchronously, on the
/// thread running the failing gd function, so a per-thread slot matches message and caller even
/// when several images are decoded in parallel. Installing it replaces gd's default for the
/// whole process, which is fine because FrameExport is this program's only user of gd.
enum GDMessages {
    private static let key = "FrameExport.gdMessage"

    /// Installs the callback the first time it is used (Swift runs a `static let` initializer once).
    private static let installed: Void = {
        gdSetErrorMethod { _, format, arguments in
            guard let format, let arguments else { return }
            var buffer = [CChar](repeating: 0, count: 512)
            _ = vsnprintf(&buffer, buffer.count, format, arguments)
            let message = String(cString: buffer).trimmingCharacters(in: .whitespacesAndNewlines)
            Thread.current.threadDictionary[GDMessages.key] = message
        }
    }()

    /// Runs `body` (which calls gd) and returns its result with the last message gd reported.
    static func capturing<Result>(_ body: () throws -> Result) rethrows -> (result: Result, message: String?) {
        _ = installed
        Thread.current.threadDictionary.removeObject(forKey: key)
        let result = try body()
        let message = Thread.current.threadDictionary[key] as? String
        Thread.current.threadDictionary.removeObject(forKey: key)
        return (result, message)
    }
}

