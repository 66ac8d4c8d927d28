import Foundation
import _CLibGD

extension RGBImage {
    /// Encodes the image as a baseline JPEG through libgd (which uses libjpeg).
    ///
    /// JPEG is lossy: it stores colour at reduced resolution and rounds fine detail away, so
    /// reading the file back gives pixels close to, not equal to, these. Use PNG for anything
    /// that must round-trip exactly; use JPEG for small previews.
    ///
    /// - Parameter quality: 1 (smallest) to 100 (best); 90 is visually near-lossless.
    public func jpegData(quality: Int = 90) throws -> Data {
        guard (1...100).contains(quality) else {
            throw FrameExportError.invalidArgument("JPEG quality must be 1...100, got \(quality)")
        }
        let image = try GDImage(copying: self)
        var size: Int32 = 0
        return try GDImage.takeBuffer(gdImageJpegPtr(image.pointer, &size, Int32(quality)), size: size, format: "JPEG")
    }

    /// Writes the image to a JPEG file atomically (see `AtomicFile`).
    public func writeJPEG(to path: String, quality: Int = 90) throws {
        try AtomicFile.write(jpegData(quality: quality), to: path)
    }
}
