/// An 8-bit RGB picture: the format every file, frame and plot in this module goes through.
///
/// Pixels are stored row by row, top row first, three bytes per pixel (red, green, blue), so the
/// pixel at column `x`, row `y` starts at byte `(y * width + x) * 3`. There is no alpha channel:
/// transparent inputs are flattened onto white when they are read.
///
/// The model works on tensors instead; see `init(tensor:range:)` and `toTensor(range:)` for the
/// conversion both ways.
///
/// ```swift
/// var image = RGBImage(width: 64, height: 64, color: .black)
/// image[10, 20] = RGBColor(255, 0, 0)
/// try image.writePNG(to: "output/red-dot.png")
/// ```
public struct RGBImage: Equatable, Sendable {
    /// Number of columns.
    public let width: Int
    /// Number of rows.
    public let height: Int
    /// `width * height * 3` bytes, RGB interleaved, row-major, top row first.
    public internal(set) var pixels: [UInt8]

    /// The largest image the readers accept: 250 megapixels (750 MB as RGB). A bound is needed
    /// because a damaged header can claim billions of pixels.
    public static let maxPixelCount = 250_000_000

    /// Wraps existing RGB bytes; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)x\(height)")
        precondition(pixels.count == width * height * 3,
                     "a \(width)x\(height) RGB image needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour.
    public init(width: Int, height: Int, color: RGBColor = .black) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)x\(height)")
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = color.red
            pixels[i + 1] = color.green
            pixels[i + 2] = color.blue
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// Reads or writes the pixel at column `x`, row `y` (both must be inside the image).
    public subscript(x: Int, y: Int) -> RGBColor {
        get {
            let i = offset(x, y)
            return RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = offset(x, y)
            pixels[i] = newValue.red
            pixels[i + 1] = newValue.green
            pixels[i + 2] = newValue.blue
        }
    }

    /// Byte index of the red sample of pixel `(x, y)`.
    @inline(__always)
    func offset(_ x: Int, _ y: Int) -> Int {
        precondition(x >= 0 && x < width && y >= 0 && y < height,
                     "pixel (\(x), \(y)) is outside a \(width)x\(height) image")
        return (y * width + x) * 3
    }

    /// True when `(x, y)` lies inside the image.
    @inline(__always)
    func contains(_ x: Int, _ y: Int) -> Bool {
        x >= 0 && x < width && y >= 0 && y < height
    }
}
