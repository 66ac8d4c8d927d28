import Foundation
import Testing
import FrameExport

struct JPEGTests {
    /// JPEG is lossy, so the check is a tolerance. For a smooth picture at quality 95, libjpeg's
    /// error stays within a few levels: we allow any channel of any pixel to be off by at most 8
    /// (of 255) and the average by at most 1.5.
    @Test func readsAJPEGWrittenByGD() throws {
        let original = smoothPicture(width: 64, height: 48)
        let jpeg = try original.jpegData(quality: 95)
        #expect(ImageFormat.detect(jpeg) == .jpeg)

        let read = try RGBImage(decoding: jpeg, name: "smooth.jpg")
        #expect(read.width == 64 && read.height == 48)
        let worst = maxChannelDifference(read, original)
        let mean = Double(zip(read.pixels, original.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +))
            / Double(read.pixels.count)
        #expect(worst <= 8, "largest channel error \(worst)")
        #expect(mean <= 1.5, "mean channel error \(mean)")
    }

    @Test func formatComesFromTheBytesNotTheName() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/really-a-jpeg.png"
        try RGBImage(width: 16, height: 16, color: RGBColor(200, 40, 40)).writeJPEG(to: path, quality: 90)
        let read = try RGBImage(contentsOfFile: path)
        // A flat colour survives JPEG almost exactly.
        #expect(maxChannelDifference(read, RGBImage(width: 16, height: 16, color: RGBColor(200, 40, 40))) <= 3)
    }

    @Test func qualityIsValidated() {
        #expect(throws: FrameExportError.invalidArgument("JPEG quality must be 1...100, got 0")) {
            try RGBImage(width: 1, height: 1).jpegData(quality: 0)
        }
    }

    @Test func structureWalkerFindsSize() throws {
        let bytes = [UInt8](try RGBImage(width: 40, height: 24).jpegData())
        #expect(JPEGStructure.inspect(bytes) == .complete(width: 40, height: 24))
        #expect(JPEGStructure.inspect(Array(bytes.dropLast(2))) == .broken("the image data ends without an end-of-image marker"))
    }
}
