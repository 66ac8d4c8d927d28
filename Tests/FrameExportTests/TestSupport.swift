import Foundation
import FrameExport

/// A fresh, empty directory for one test. Remove it with `removeDirectory` in a `defer`.
func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("frame-export-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// File names in a directory, sorted, hidden files included.
func directoryListing(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).sorted()
}

/// A deterministic picture where every pixel differs from its neighbours: red grows along x,
/// green along y, blue is a checker pattern. Catches swapped channels, flipped rows and off-by-one.
func testPattern(width: Int, height: Int) -> RGBImage {
    var image = RGBImage(width: width, height: height)
    for y in 0..<height {
        for x in 0..<width {
            image[x, y] = RGBColor(UInt8((x * 255) / max(1, width - 1)),
                                   UInt8((y * 255) / max(1, height - 1)),
                                   (x / 4 + y / 4) % 2 == 0 ? 40 : 220)
        }
    }
    return image
}

/// A smooth picture (gentle gradients, no sharp edges), the kind JPEG reproduces closely.
func smoothPicture(width: Int, height: Int) -> RGBImage {
    var image = RGBImage(width: width, height: height)
    for y in 0..<height {
        for x in 0..<width {
            let u = Double(x) / Double(width - 1), v = Double(y) / Double(height - 1)
            image[x, y] = RGBColor(UInt8(40 + 180 * u), UInt8(60 + 120 * v), UInt8(200 - 100 * u * v))
        }
    }
    return image
}

/// Largest difference of any channel of any pixel between two images of one size.
func maxChannelDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
    precondition(a.width == b.width && a.height == b.height)
    return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
}
