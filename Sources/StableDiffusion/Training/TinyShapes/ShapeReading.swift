import TensorCore

/// What a picture of the shapes world shows, read back from its pixels: the colour, position and
/// shape of the saturated thing on the light background. Tests use it to check that the trained
/// model draws what the prompt asks for, without a person looking.
///
/// - colour: the shape's pixels are those whose channels differ by more than 0.3 (the background
///   is grey, every shape colour saturated); their mean is matched to the nearest of the four colours;
/// - position: their centre of mass, the centre if within 0.12 of the picture's middle, else the
///   side it leans to most;
/// - shape: how much of their bounding box they fill, about 1 for a square, π/4 ≈ 0.79 for a
///   circle and 1/2 for a triangle.
///
/// ```swift
/// let reading = ShapeReading(ShapeScene(colour: .blue, shape: .square, position: .top).render())
/// reading?.colour     // .blue
/// ```
public struct ShapeReading: Equatable, CustomStringConvertible {
    public let colour: ShapeScene.Colour
    public let position: ShapeScene.Position
    public let shape: ShapeScene.Shape
    /// The share of the picture the shape covers.
    public let coverage: Double

    /// Reads the first picture of a `(n, 3, h, w)` tensor in [−1, 1]; nil when no shape is visible
    /// (fewer than 1% of the pixels are saturated).
    public init?(_ picture: Tensor) {
        let height = picture.shape[2], width = picture.shape[3], plane = height * width
        let p = picture.scalars
        var count = 0, sum = SIMD3<Double>(), sx = 0.0, sy = 0.0
        var minX = width, maxX = -1, minY = height, maxY = -1
        for y in 0..<height {
            for x in 0..<width {
                let rgb = SIMD3((0..<3).map { (Double(p[$0 * plane + y * width + x]) + 1) / 2 })
                guard rgb.max() - rgb.min() > 0.3 else { continue }
                count += 1
                sum += rgb
                sx += Double(x) + 0.5
                sy += Double(y) + 0.5
                (minX, maxX, minY, maxY) = (min(minX, x), max(maxX, x), min(minY, y), max(maxY, y))
            }
        }
        guard count * 100 >= plane else { return nil }
        let mean = sum / Double(count)
        colour = ShapeScene.Colour.allCases.min { a, b in
            ((a.rgb - mean) * (a.rgb - mean)).sum() < ((b.rgb - mean) * (b.rgb - mean)).sum()
        }!
        let dx = sx / Double(count) / Double(width) - 0.5, dy = sy / Double(count) / Double(height) - 0.5
        if abs(dx) < 0.12 && abs(dy) < 0.12 {
            position = .centre
        } else if abs(dx) > abs(dy) {
            position = dx < 0 ? .left : .right
        } else {
            position = dy < 0 ? .top : .bottom
        }
        let fill = Double(count) / Double((maxX - minX + 1) * (maxY - minY + 1))
        shape = fill > 0.9 ? .square : fill > 0.64 ? .circle : .triangle
        coverage = Double(count) / Double(plane)
    }

    public var description: String {
        ShapeScene(colour: colour, shape: shape, position: position).caption
    }

    /// What the pixels tell reliably, colour and place: "green, on the left" (the shape, read from
    /// the fill ratio, is not: see `shape`).
    public var colourAndPlace: String {
        colour.rawValue + ", " + (position.phrase ?? "in the centre")
    }
}
